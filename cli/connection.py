"""Connect to Temporal the way the Temporal CLI does: ``temporalio.envconfig``.

TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE and the
profiles of TEMPORAL_CONFIG_FILE (default ~/.config/temporalio/temporal.toml) all apply, so the
same commands serve the local dev server, a self-hosted cluster or Temporal Cloud.
"""

import os

from temporalio.client import Client, Plugin
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from models.errors import ConfigError, TemporalUnavailableError

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_TASK_QUEUE = "blue-green-deployments"


def task_queue() -> str:
    """The task queue of the deployment workflows: BLUEGREEN_TASK_QUEUE or the default."""
    return os.environ.get("BLUEGREEN_TASK_QUEUE") or DEFAULT_TASK_QUEUE


async def connect(profile: str | None = None, plugins: list[Plugin] | None = None) -> Client:
    """A client with the pydantic data converter; one-line errors for bad settings or no server."""
    try:
        settings = ClientConfig.load_client_connect_config(profile=profile)
    except Exception as err:  # the loader reports bad files and values in many types
        raise ConfigError(f"Temporal connection settings: {err}") from None
    settings.setdefault("target_host", DEFAULT_ADDRESS)
    try:
        return await Client.connect(
            **settings, data_converter=pydantic_data_converter, plugins=plugins or []
        )
    except RuntimeError as err:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {settings['target_host']} "
            f"(namespace {settings.get('namespace', 'default')}): {err}"
        ) from None
