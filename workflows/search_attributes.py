"""The custom search attributes of deployments, defined once: typed keys and their values.

The Web UI and ``temporal workflow list --query`` filter on them, e.g. every prod deployment
waiting for approval::

    BlueGreenEnvironment="prod" AND BlueGreenPhase="awaiting_approval" AND ExecutionStatus="Running"

A namespace must have them registered (``REGISTRATIONS``: ``temporal operator search-attribute
create --name BlueGreenPhase --type Keyword`` …; the local dev server registers them itself).
The client sets them at start (``at_start``) only when they are; the workflows then keep phase
and state up to date (``progress``) only when their request says the client did
(``search_attributes``), so a namespace without them runs deployments exactly as before.
"""

from collections.abc import Sequence

from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from models.deployment_phase import Phase, State

SERVICE = SearchAttributeKey.for_keyword("BlueGreenService")
ENVIRONMENT = SearchAttributeKey.for_keyword("BlueGreenEnvironment")
VERSION = SearchAttributeKey.for_keyword("BlueGreenVersion")
"""The version being deployed."""
PHASE = SearchAttributeKey.for_keyword("BlueGreenPhase")
"""A ``Phase`` value; a multi-region parent's is the phase that matters across its regions."""
STATE = SearchAttributeKey.for_keyword("BlueGreenState")
"""A ``State`` value: running, succeeded, failed, rolled_back."""
REGIONS = SearchAttributeKey.for_keyword_list("BlueGreenRegions")
"""Every region of the deployment; a region's own child workflow has its region alone."""

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[Sequence[str]], ...] = (
    SERVICE,
    ENVIRONMENT,
    VERSION,
    PHASE,
    STATE,
    REGIONS,
)
"""Every one of them, as a namespace must have them registered."""

_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
REGISTRATIONS = {key.name: _TYPE_NAMES[key.indexed_value_type] for key in ALL}
"""{name: type} as the Temporal CLI takes them (``--search-attribute NAME=TYPE``, ``--type``)."""


def at_start(
    service: str, environment: str, version: str | None, regions: Sequence[str]
) -> TypedSearchAttributes:
    """What a deployment starts with: who and where, phase ``setting_up``, state ``running``.

    ``version`` None (a switch back, which deploys no version) leaves the version and the
    phase and state, which only the deployment workflows keep up to date, unset.
    """
    pairs: list[SearchAttributePair[str] | SearchAttributePair[Sequence[str]]] = [
        SearchAttributePair(SERVICE, service),
        SearchAttributePair(ENVIRONMENT, environment),
        SearchAttributePair(REGIONS, list(regions)),
    ]
    if version is not None:
        pairs += [
            SearchAttributePair(VERSION, version),
            SearchAttributePair(PHASE, Phase.SETTING_UP.value),
            SearchAttributePair(STATE, State.RUNNING.value),
        ]
    return TypedSearchAttributes(pairs)


def progress(phase: Phase, state: State) -> list[SearchAttributeUpdate[str]]:
    """The upsert of a deployment's phase and state."""
    return [PHASE.value_set(phase.value), STATE.value_set(state.value)]
