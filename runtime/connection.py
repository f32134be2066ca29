"""Connect to Temporal the way the Temporal CLI does: ``temporalio.envconfig``.

TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE and the
profiles of TEMPORAL_CONFIG_FILE (default ~/.config/temporalio/temporal.toml) all apply, so the
same commands serve the local dev server, a self-hosted cluster or Temporal Cloud.

Every client carries Temporal's OpenTelemetry tracing interceptor (``runtime/tracing.py``), and so
does every worker made from it: spans are no-ops unless ``configure_tracing`` set an exporter.
"""

import os

from opentelemetry.trace import Tracer
from temporalio.client import Client, Plugin
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from models.errors import ConfigError, TemporalUnavailableError
from runtime.tracing import tracing_interceptor

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_TASK_QUEUE = "blue-green-deployments"


def task_queue() -> str:
    """The task queue of the deployment workflows: BLUEGREEN_TASK_QUEUE or the default."""
    return os.environ.get("BLUEGREEN_TASK_QUEUE") or DEFAULT_TASK_QUEUE


async def connect(
    profile: str | None = None, plugins: list[Plugin] | None = None, tracer: Tracer | None = None
) -> Client:
    """A client with the pydantic data converter and tracing (``tracer``, default the process's
    provider's); one-line errors for bad settings or no server."""
    try:
        # An unset CI secret arrives as an empty variable: empty means not set, not "".
        given = {k: v for k, v in os.environ.items() if v != "" or not k.startswith("TEMPORAL_")}
        settings = ClientConfig.load_client_connect_config(profile=profile, override_env_vars=given)
    except Exception as err:  # the loader reports bad files and values in many types
        raise ConfigError(f"Temporal connection settings: {err}") from None
    settings.setdefault("target_host", DEFAULT_ADDRESS)
    try:
        return await Client.connect(
            **settings,
            data_converter=pydantic_data_converter,
            plugins=plugins or [],
            # A worker made from this client inherits it: Worker takes the client's interceptors.
            interceptors=[tracing_interceptor(tracer)],
        )
    except RuntimeError as err:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {settings['target_host']} "
            f"(namespace {settings.get('namespace', 'default')}): {err}"
        ) from None
