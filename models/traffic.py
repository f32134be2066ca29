"""How traffic moves to the new color: all at once, or in steps (``[environments.<env>.traffic]``).

A step gives the new color a percent of the traffic, then waits (a durable timer, or the
``approve`` message) while the metric analysis and the alarms judge it. The last step is always
100 %. The strategies name the usual step plans; the CodeDeploy presets name fixed ones.
"""

from datetime import timedelta
from typing import Literal, Self, cast

from pydantic import Field, model_validator

from models.durations import Duration
from models.strict import StrictModel

ALL_TRAFFIC = 100

Strategy = Literal["all_at_once", "canary", "linear", "steps"]

PRESETS: dict[str, tuple[Strategy, int, timedelta]] = {
    "ECSAllAtOnce": ("all_at_once", ALL_TRAFFIC, timedelta(0)),
    "ECSCanary10Percent5Minutes": ("canary", 10, timedelta(minutes=5)),
    "ECSCanary10Percent15Minutes": ("canary", 10, timedelta(minutes=15)),
    "ECSLinear10PercentEvery1Minutes": ("linear", 10, timedelta(minutes=1)),
    "ECSLinear10PercentEvery3Minutes": ("linear", 10, timedelta(minutes=3)),
}
"""CodeDeploy's predefined ECS configurations (also accepted as ``CodeDeployDefault.<name>``):
strategy, percent and pause."""
_PRESET_PREFIX = "CodeDeployDefault."


class TrafficConfig(StrictModel):
    """The steps that move the traffic from the old color to the new one.

    - ``all_at_once`` (the default): one step, 100 %.
    - ``canary``: ``percent``, a ``pause``, then 100 %.
    - ``linear``: ``percent`` more every ``pause`` until 100 %.
    - ``steps``: the percents in ``steps`` (rising, the last one 100), a ``pause`` after each.
    - a CodeDeploy preset by name, e.g. ``ECSCanary10Percent5Minutes``.

    ``approve_at`` lists step percents whose pause waits for the ``approve`` message instead of
    the timer (at most ``approval.timeout``, then as ``approval.on_timeout`` says).
    """

    strategy: str = "all_at_once"
    percent: int | None = Field(default=None, ge=1, le=99)
    steps: list[int] = Field(default_factory=list)
    pause: Duration | None = None
    approve_at: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _a_plan(self) -> Self:
        strategy = self.strategy.removeprefix(_PRESET_PREFIX)
        if strategy in PRESETS:
            if self.percent is not None or self.steps or self.pause is not None:
                raise ValueError(
                    f"strategy {self.strategy} is a preset: it takes no percent, steps or pause"
                )
        elif strategy not in ("all_at_once", "canary", "linear", "steps"):
            presets = ", ".join(PRESETS)
            raise ValueError(
                f"strategy {self.strategy!r} is not all_at_once, canary, linear, steps or a"
                f" CodeDeploy preset ({presets})"
            )
        elif strategy == "all_at_once":
            if self.percent is not None or self.steps or self.pause is not None:
                raise ValueError("strategy all_at_once takes no percent, steps or pause")
        elif strategy == "steps":
            self._check_steps()
        elif self.percent is None:
            raise ValueError(f"percent is required with strategy {strategy}")
        elif self.steps:
            raise ValueError(f"steps are for strategy steps, not {strategy}")
        if strategy in ("canary", "linear", "steps") and self.pause is None:
            raise ValueError(f"pause is required with strategy {strategy}")
        if self.pause is not None and self.pause <= timedelta(0):
            raise ValueError("pause must be greater than zero")
        plan = self.plan()
        for percent in self.approve_at:
            if percent not in plan[:-1]:
                raise ValueError(
                    f"approve_at: {percent} is not a step before 100"
                    f" (the steps are {', '.join(map(str, plan))})"
                )
        return self

    def _check_steps(self) -> None:
        if not self.steps:
            raise ValueError("steps are required with strategy steps, e.g. [10, 50, 100]")
        if self.percent is not None:
            raise ValueError("percent is for canary and linear; strategy steps lists its steps")
        if any(not 0 < s <= ALL_TRAFFIC for s in self.steps):
            raise ValueError("steps must be percents from 1 to 100")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("steps must rise, each higher than the one before")
        if self.steps[-1] != ALL_TRAFFIC:
            raise ValueError("steps must end at 100: the last step sends all traffic over")

    def plan(self) -> list[int]:
        """The new color's percent at each step; the last is 100."""
        strategy, percent = self._resolved()
        if strategy == "steps":
            return list(self.steps)
        if strategy == "canary":
            return [percent, ALL_TRAFFIC]
        if strategy == "linear":
            return [*range(percent, ALL_TRAFFIC, percent), ALL_TRAFFIC]
        return [ALL_TRAFFIC]

    def pause_after_step(self) -> timedelta:
        """How long each step before the last one waits (unless it waits for approval)."""
        name = self.strategy.removeprefix(_PRESET_PREFIX)
        if name in PRESETS:
            return PRESETS[name][2]
        return self.pause or timedelta(0)

    def is_gradual(self) -> bool:
        """True when some traffic moves before all of it does."""
        return len(self.plan()) > 1

    def _resolved(self) -> tuple[Strategy, int]:
        name = self.strategy.removeprefix(_PRESET_PREFIX)
        if name in PRESETS:
            strategy, percent, _ = PRESETS[name]
            return strategy, percent
        return cast(Strategy, name), self.percent or ALL_TRAFFIC
