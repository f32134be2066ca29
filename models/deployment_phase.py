"""The phases of a deployment and how it ends, shared by the status and the messages."""

from enum import StrEnum


class Phase(StrEnum):
    """The steps of a deployment in the order they run, then the compensation and the end."""

    SETTING_UP = "setting_up"
    DEPLOYING = "deploying"
    WAITING_FOR_HEALTH = "waiting_for_health"
    TESTING = "testing"
    AWAITING_APPROVAL = "awaiting_approval"
    SWITCHING = "switching"
    BAKING = "baking"
    DRAINING = "draining"
    CLEANING_UP = "cleaning_up"
    COMPENSATING = "compensating"
    DONE = "done"


class State(StrEnum):
    """How a deployment stands or ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
