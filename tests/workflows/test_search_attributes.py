"""The BlueGreen* search attributes: set at start, kept up to date by the workflows, only when
the request says the namespace has them (the session's time-skipping server has them
registered; ``conftest.time_skipping``)."""

import itertools
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import TypedSearchAttributes
from temporalio.converter import decode_typed_search_attributes
from temporalio.testing import WorkflowEnvironment

from cli import deployment_kinds, starting
from models.deployment import DeploymentStatus, Phase, PhaseEntry, State
from models.messages import Approval, ApproveRequest
from models.multi_region import MultiRegionStatus, RegionProgress
from models.observations import ConnectionCount
from tests.factories import deployment_request
from tests.workflows.driving import outcome, phases, running_worker, start, wait_for_phase
from tests.workflows.driving_regions import (
    REGIONS,
    child,
    regions_environment,
    regions_outcome,
    regions_request,
    start_regions,
    wait_for_regions,
)
from tests.workflows.fake_aws import FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows import search_attributes as sa
from workflows.multi_region_details import describe_regions, overall_phase

WEST, EAST, _ = REGIONS
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def searchable(service: str = "game", regions: tuple[str, ...] = (WEST,)) -> dict[str, Any]:
    """The start options client.py uses on a namespace that has the search attributes."""
    return {"search_attributes": sa.at_start(service, "prod", "2", list(regions))}


def ours(found: TypedSearchAttributes) -> list[str]:
    """The BlueGreen* attributes among ``found`` (``workflow.patched`` adds Temporal's own)."""
    names = {key.name for key in sa.ALL}
    return [pair.key.name for pair in found if pair.key.name in names]


async def upserted(handle: WorkflowHandle[Any, Any]) -> list[tuple[str | None, str | None]]:
    """(phase, state) of each upsert of ours in the workflow's history, in order.

    ``workflow.patched`` upserts Temporal's own ``TemporalChangeVersion``: not counted.
    """
    history = await handle.fetch_history()
    seen = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attributes = event.upsert_workflow_search_attributes_event_attributes
            typed = decode_typed_search_attributes(attributes.search_attributes)
            if typed.get(sa.PHASE) is not None:
                seen.append((typed.get(sa.PHASE), typed.get(sa.STATE)))
    return seen


async def attributes(handle: WorkflowHandle[Any, Any]) -> TypedSearchAttributes:
    return (await handle.describe()).typed_search_attributes


def test_the_names_and_types_are_those_registered_everywhere() -> None:
    # docker-compose.yml, the commands in docs/operating.md and the local dev server use these.
    assert sa.REGISTRATIONS == {
        "BlueGreenService": "Keyword",
        "BlueGreenEnvironment": "Keyword",
        "BlueGreenVersion": "Keyword",
        "BlueGreenPhase": "Keyword",
        "BlueGreenState": "Keyword",
        "BlueGreenRegions": "KeywordList",
    }


async def test_a_deployment_keeps_its_phase_and_state_searchable(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    request = deployment_request(require_approval=True, search_attributes=True)
    async with running_worker(client, FakeAws()) as task_queue:
        handle = await start(client, task_queue, request, **searchable())
        await wait_for_phase(handle, Phase.AWAITING_APPROVAL)
        waiting = await attributes(handle)
        await handle.signal("approve", ApproveRequest(by="alice"))
        final = await outcome(handle)

    assert waiting.get(sa.PHASE) == "awaiting_approval"
    assert waiting.get(sa.STATE) == "running"
    assert (waiting.get(sa.SERVICE), waiting.get(sa.ENVIRONMENT)) == ("game", "prod")
    assert (waiting.get(sa.VERSION), waiting.get(sa.REGIONS)) == ("2", [WEST])
    assert final.state == State.SUCCEEDED
    # One upsert per phase, the state along with it.
    assert await upserted(handle) == [
        (phase.value, "succeeded" if phase == Phase.DONE else "running") for phase in phases(final)
    ]
    assert (await attributes(handle)).get(sa.STATE) == "succeeded"


async def test_a_failed_deployment_ends_searchable_as_failed(
    time_skipping: WorkflowEnvironment,
) -> None:
    client = time_skipping.client
    request = deployment_request(search_attributes=True)
    async with running_worker(client, FakeAws(healthy_after=None)) as task_queue:
        handle = await start(client, task_queue, request, **searchable())
        final = await outcome(handle)

    assert final.state == State.FAILED
    assert (await upserted(handle))[-2:] == [("compensating", "failed"), ("done", "failed")]
    found = await attributes(handle)
    assert (found.get(sa.PHASE), found.get(sa.STATE)) == ("done", "failed")


async def test_without_the_flag_nothing_is_upserted(time_skipping: WorkflowEnvironment) -> None:
    # A namespace without the search attributes: an upsert would fail the workflow task.
    client = time_skipping.client
    async with running_worker(client, FakeAws()) as task_queue:
        handle = await start(client, task_queue, deployment_request())
        assert (await outcome(handle)).state == State.SUCCEEDED

    assert await upserted(handle) == []
    assert ours(await attributes(handle)) == []


async def test_the_client_starts_without_them_when_the_server_cannot_list_them(
    time_skipping: WorkflowEnvironment,
) -> None:
    # The time-skipping server has them but does not implement ListSearchAttributes: the
    # client cannot tell, so it starts as on a namespace without them.
    client = time_skipping.client
    assert await starting.search_attributes_registered(client) is False
    request = deployment_request(service="unlisted")
    async with running_worker(client, FakeAws()) as task_queue:
        handle = await deployment_kinds.start(client, request, task_queue)
        assert (await outcome(handle)).state == State.SUCCEEDED

    assert await upserted(handle) == []
    assert ours(await attributes(handle)) == []


async def test_a_multi_region_deployment_and_its_regions_are_searchable(
    time_skipping: WorkflowEnvironment,
) -> None:
    client: Client = time_skipping.client
    env = regions_environment([WEST, EAST])
    request = regions_request(env, require_approval=True, search_attributes=True)
    aws = RegionalFakeAws.of(env)
    async with running_worker(client, aws) as task_queue:
        handle = await start_regions(
            client, task_queue, request, **searchable(regions=(WEST, EAST))
        )
        await wait_for_regions(handle, Phase.AWAITING_APPROVAL, [WEST, EAST])
        parent_waiting = await attributes(handle)
        east_waiting = await attributes(child(client, handle, EAST))
        await handle.signal("approve", ApproveRequest(by="alice"))
        final = await regions_outcome(handle)

    assert final.state == State.SUCCEEDED
    assert parent_waiting.get(sa.PHASE) == "awaiting_approval"
    assert parent_waiting.get(sa.REGIONS) == [WEST, EAST]
    # Each region's child carries its own region, and its own phase.
    assert east_waiting.get(sa.REGIONS) == [EAST]
    assert east_waiting.get(sa.PHASE) == "awaiting_approval"
    assert (east_waiting.get(sa.SERVICE), east_waiting.get(sa.VERSION)) == ("game", "2")
    parent_upserts = await upserted(handle)
    assert parent_upserts[-1] == ("done", "succeeded")
    # Only changes are written, though every region reports every phase.
    assert all(a != b for a, b in itertools.pairwise(parent_upserts))
    assert ("awaiting_approval", "running") in parent_upserts
    for region in (WEST, EAST):
        found = await attributes(child(client, handle, region))
        assert (found.get(sa.PHASE), found.get(sa.STATE)) == ("done", "succeeded")


# --- the phase of a multi-region deployment ------------------------------------------------------


def regions_status(*phases: Phase | None, **fields: Any) -> MultiRegionStatus:
    """A two-wave deployment over REGIONS whose regions are in ``phases`` (None: not started)."""
    regions = {}
    for index, (name, phase) in enumerate(zip(REGIONS, phases, strict=True)):
        reported = (
            DeploymentStatus(
                deployment_id=f"deploy-game-prod-{name}",
                service="game",
                environment="prod",
                region=name,
                version="2",
                image="game:2",
                phase=phase,
                phases=[PhaseEntry(phase=phase, entered_at=NOW)],
            )
            if phase is not None
            else None
        )
        regions[name] = RegionProgress(
            region=name,
            wave=min(index, 1),
            workflow_id=f"deploy-game-prod-{name}",
            started=reported is not None,
            status=reported,
        )
    return MultiRegionStatus(
        deployment_id="deploy-game-prod",
        service="game",
        environment="prod",
        version="2",
        image="game:2",
        waves=[[REGIONS[0]], list(REGIONS[1:])],
        regions=regions,
        **fields,
    )


def test_the_phase_of_several_regions() -> None:
    P = Phase
    assert overall_phase(regions_status(None, None, None)) == P.SETTING_UP
    assert overall_phase(regions_status(P.DRAINING, P.DEPLOYING, None)) == P.DEPLOYING
    # A region at the gate of a deployment that requires approval: a person has work to do.
    waiting = regions_status(P.AWAITING_APPROVAL, P.TESTING, None, require_approval=True)
    assert overall_phase(waiting) == P.AWAITING_APPROVAL
    waiting.approval = Approval(by="alice", comment="", at=NOW)
    assert overall_phase(waiting) == P.TESTING
    assert overall_phase(regions_status(P.BAKING, P.COMPENSATING, None)) == P.COMPENSATING
    # Ended regions no longer hold the others back, until every region has ended.
    assert overall_phase(regions_status(P.DONE, P.BAKING, P.DRAINING)) == P.BAKING
    assert overall_phase(regions_status(P.DONE, P.DONE, P.DONE)) == P.DONE
    ended = regions_status(P.DONE, P.DONE, None, state=State.FAILED)
    assert overall_phase(ended) == P.DONE


def test_the_regions_details_show_the_phase_and_each_regions_latest_check() -> None:
    status = regions_status(
        Phase.AWAITING_APPROVAL, Phase.WAITING_FOR_HEALTH, None, require_approval=True
    )
    text = describe_regions(status, NOW)

    assert "- state: running, phase: **awaiting_approval**, wave 1 of 2" in text
    assert (
        f"- **waiting for approval** ({WEST} ready to switch): `client.py approve deploy-game-prod`"
        in text
    )
    assert f"- **{WEST}** (wave 1): awaiting_approval since 12:00:00 UTC, running; at the gate" in (
        text.splitlines()
    )
    assert f"- **{REGIONS[2]}** (wave 2): not started" in text.splitlines()


def test_a_region_line_shows_its_colors_versions_and_latest_check() -> None:
    status = regions_status(Phase.DRAINING, Phase.DONE, None)
    draining = status.regions[WEST].status
    assert draining is not None
    draining.active_color_before, draining.active_color_after = "blue", "green"
    draining.versions_after = {"blue": "1", "green": "2"}
    draining.last_connections = ConnectionCount(version="1", count=3, checked_at=NOW)
    text = describe_regions(status, NOW)

    assert (
        f"- **{WEST}** (wave 1): draining since 12:00:00 UTC, running; traffic blue → green;"
        " versions blue 1, green 2; 3 connections left"
    ) in text.splitlines()
