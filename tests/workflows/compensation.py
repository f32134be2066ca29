"""What a deployment reports it restored (``FailureReport.compensation``), by phase rule."""

BEFORE_SWITCH = ["scaled green to 0", "SSM version of green back to (none)"]
"""Stopped before the switch: green scaled back, its SSM version restored."""
AFTER_SWITCH = ["traffic back to blue", "SSM active color back to blue", *BEFORE_SWITCH]
"""Stopped after the switch: traffic back to blue first, then SSM, then green as above."""
