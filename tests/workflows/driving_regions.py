"""Running MultiRegionDeployment on a test server, and steering it by its regions' phases.

The multi-region counterpart of ``driving.py``: an environment over several regions (each
region's colors with URLs of their own, so ``RegionalFakeAws`` can tell them apart), the
parent's request, its start and outcome, and waits on the phases the children report to it.
"""

import asyncio
import uuid
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from models.config import EnvironmentConfig
from models.deployment import DeploymentStatus, Phase
from models.multi_region import MultiRegionRequest, MultiRegionStatus
from tests.factories import environment
from tests.workflows.driving import Handle
from workflows.deployment import BlueGreenDeployment
from workflows.multi_region import MultiRegionDeployment

RegionsHandle = WorkflowHandle[MultiRegionDeployment, MultiRegionStatus]

REGIONS = ("us-west-2", "us-east-1", "eu-west-1")
"""The regions tests deploy to; the first is the environment's own ``region``."""


def color_urls(region: str) -> dict[str, Any]:
    """Blue's and green's URLs in ``region``: a port block of its own per region."""
    port = 28000 + 10 * REGIONS.index(region)
    return {
        "blue": {"url": f"http://127.0.0.1:{port + 1}"},
        "green": {"url": f"http://127.0.0.1:{port + 2}"},
    }


def regions_environment(
    regions: list[str] | None = None,
    *,
    waves: list[list[str]] | None = None,
    in_region: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> EnvironmentConfig:
    """The test environment (``tests.factories``) in ``regions`` (one wave) or in ``waves``.

    Every region gets its own color URLs; ``in_region`` adds what else differs per region
    (top-level keys, e.g. ``{"eu-west-1": {"health": {...}}}``); ``overrides`` apply to all.
    """
    listed = [r for wave in waves for r in wave] if waves else list(regions or REGIONS[:2])
    extra = in_region or {}
    fields: dict[str, Any] = {
        "in_region": {r: color_urls(r) | extra.get(r, {}) for r in listed},
        **({"waves": waves} if waves else {"regions": listed}),
    }
    return environment(**fields, **overrides)


def regions_request(
    env: EnvironmentConfig, *, service: str = "game", **options: Any
) -> MultiRegionRequest:
    """Deploy version 2 of ``service`` to prod in every region of ``env``, wave by wave."""
    return MultiRegionRequest(
        service=service,
        environment="prod",
        version="2",
        image=f"registry.example.com/{service}:2",
        waves=[[env.for_region(r) for r in wave] for wave in env.wave_list()],
        **options,
    )


async def start_regions(
    client: Client, task_queue: str, request: MultiRegionRequest, **options: Any
) -> RegionsHandle:
    """Start a multi-region deployment under an ID of its own (``options``: of the start)."""
    return await client.start_workflow(
        MultiRegionDeployment.run,
        request,
        id=f"regions-{uuid.uuid4()}",
        task_queue=task_queue,
        **options,
    )


async def regions_outcome(handle: RegionsHandle) -> MultiRegionStatus:
    """The parent's final status, whether it succeeded or not (awaiting it skips time)."""
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        assert isinstance(err.cause, ApplicationError)
        assert err.cause.type == "DeploymentFailed"
        return MultiRegionStatus.model_validate(err.cause.details[0])


async def wait_for_regions(
    handle: RegionsHandle, phase: Phase, regions: list[str], seconds: float = 30
) -> MultiRegionStatus:
    """Poll the parent's ``status`` until each of ``regions`` reported ``phase`` (real time)."""
    status = await handle.query(MultiRegionDeployment.status)
    for _ in range(int(seconds / 0.05)):
        if all(_phase(status, r) == phase for r in regions):
            return status
        await asyncio.sleep(0.05)
        status = await handle.query(MultiRegionDeployment.status)
    seen = ", ".join(f"{r} {_phase(status, r)}" for r in status.regions)
    raise AssertionError(f"{handle.id}: {', '.join(regions)} never all {phase.value}; last: {seen}")


def _phase(status: MultiRegionStatus, region: str) -> str | None:
    reported = status.regions[region].status
    return reported.phase.value if reported else None


def region(status: MultiRegionStatus, name: str) -> DeploymentStatus:
    """The status ``name``'s child last reported (its final one once it has ended)."""
    reported = status.regions[name].status
    assert reported is not None, f"{name} reported nothing"
    return reported


def entered(status: DeploymentStatus, phase: Phase) -> datetime:
    """When the deployment (first) entered ``phase``."""
    return next(entry.entered_at for entry in status.phases if entry.phase == phase)


def child(client: Client, parent: RegionsHandle, name: str) -> Handle:
    """The handle of the parent's child deploying to region ``name``: ``<parent ID>-<name>``."""
    return client.get_workflow_handle_for(BlueGreenDeployment.run, f"{parent.id}-{name}")
