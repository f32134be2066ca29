"""Temporal workflows: deterministic orchestration only, every side effect is an activity."""

from workflows.deployment import BlueGreenDeployment

ALL_WORKFLOWS = [BlueGreenDeployment]
