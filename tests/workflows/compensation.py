"""What a deployment reports it restored (``FailureReport.compensation``), by phase rule."""

from models.observations import task_definition_name


def before_switch(green_was_on: str) -> list[str]:
    """Stopped before the switch: green scaled back onto the task definition it ran before the
    deployment (the ARN ``green_was_on``), its SSM version restored."""
    back_on = task_definition_name(green_was_on)
    return [f"scaled green to 0, back on {back_on}", "SSM version of green back to (none)"]


def after_switch(green_was_on: str) -> list[str]:
    """Stopped after the switch: traffic back to blue first, then SSM, then green as above."""
    return ["traffic back to blue", "SSM active color back to blue", *before_switch(green_was_on)]
