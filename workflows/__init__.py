"""Temporal workflows: deterministic orchestration only, every side effect is an activity."""

from workflows.deployment import BlueGreenDeployment
from workflows.lease import EnvironmentLease
from workflows.multi_region import MultiRegionDeployment
from workflows.switch_back import SwitchBack
from workflows.waits import LongWait

ALL_WORKFLOWS = [
    BlueGreenDeployment,
    EnvironmentLease,
    LongWait,
    MultiRegionDeployment,
    SwitchBack,
]
