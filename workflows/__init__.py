"""Temporal workflows: deterministic orchestration only, every side effect is an activity."""

from workflows.bake import WatchBakeAlarms
from workflows.deployment import BlueGreenDeployment
from workflows.drain import DrainConnections
from workflows.health import WaitUntilHealthy
from workflows.multi_region import MultiRegionDeployment
from workflows.switch_back import SwitchBack

ALL_WORKFLOWS = [
    BlueGreenDeployment,
    DrainConnections,
    MultiRegionDeployment,
    SwitchBack,
    WaitUntilHealthy,
    WatchBakeAlarms,
]
