"""The switch in steps: the new color gets a share of the traffic, holds it while it is judged,
then a larger one, until the last step sends it all (``[environments.<env>.traffic]``).

Each step sets the router's weights, then pauses on a durable timer or waits for the
``approve`` message, while the bake's alarms are read and the analysis metrics measured beside
it (workflows/analysis.py); it ends once every metric passed since the step began. Until
the last step SSM keeps the old color as the active one: the old color still serves most of
the traffic, and a rollback only has to put the weights back.
"""

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.colors import Color
    from models.config import EnvironmentConfig
    from models.deployment import DeploymentStatus
    from models.durations import format_duration
    from models.messages import ApproveRequest, StepApproval
    from models.observations import RouterWeights
    from workflows.analysis import Analysis
    from workflows.approvals import wait_for_approval
    from workflows.aws_steps import AwsSteps


class TrafficSteps:
    """The steps of one deployment's switch before all traffic is on the new color."""

    def __init__(
        self,
        env: EnvironmentConfig,
        aws: AwsSteps,
        status: DeploymentStatus,
        analysis: Analysis,
        on_change: Callable[[], None],
    ) -> None:
        self._env = env
        self._aws = aws
        self._calls = aws.calls
        self._status = status
        self._analysis = analysis
        self._on_change = on_change

    async def before_all_traffic(self, new: Color) -> None:
        """Take every step but the last; the caller then sends all traffic to ``new``."""
        plan = self._env.traffic.plan()
        self._status.traffic_plan = plan
        if len(plan) == 1:
            return
        bake = self._env.bake
        self._analysis.watch_alarms(self._aws.alarms_input(), bake.poll_interval)
        try:
            for step, percent in enumerate(plan[:-1], start=1):
                await self._set(step, percent, new)
                # Judged from its first traffic on; each step by what it measured itself.
                self._analysis.watch_metrics(self._env, new)
                self._analysis.mark()
                await self._hold(step, percent, new)
                await self._analysis.until_passing()
        finally:
            await self._analysis.stop_alarms()
        self._status.step_until = None

    async def _set(self, step: int, percent: int, new: Color) -> None:
        weights = RouterWeights.split(new, percent)
        await self._aws.set_weights(
            weights, f"step {step} of {len(self._status.traffic_plan)}: {percent}% to {new}"
        )
        self._status.traffic_step = step
        self._status.traffic_split = weights
        self._on_change()

    async def _hold(self, step: int, percent: int, new: Color) -> None:
        if percent in self._env.traffic.approve_at:
            await self._wait_for_approval(step, percent)
            return
        pause = self._env.traffic.pause_after_step()
        self._status.step_until = workflow.now() + pause
        self._on_change()
        await self._calls.pause(
            pause, f"hold {percent}% on {new} for {format_duration(pause)}, judging it"
        )

    async def _wait_for_approval(self, step: int, percent: int) -> None:
        policy = self._env.approval
        status = self._status
        status.awaiting_step_approval = True
        status.step_until = workflow.now() + policy.timeout
        self._on_change()
        try:
            proceeding = await wait_for_approval(
                self._calls,
                policy,
                lambda: self.approved(step),
                f"approval of {percent}%",
                f"nobody approved the step at {percent}%",
            )
        finally:
            status.awaiting_step_approval = False
        if proceeding is not None:
            self.record_approval(ApproveRequest(by="timeout", comment=proceeding))
            status.warnings.append(f"step {step} ({percent}%): {proceeding}")
        self._calls.raise_if_interrupted()

    def approved(self, step: int) -> bool:
        """Whether the step numbered ``step`` has its approval."""
        return any(a.step == step for a in self._status.step_approvals)

    def record_approval(self, request: ApproveRequest) -> None:
        """Let the step waiting for approval go on."""
        status = self._status
        step = status.traffic_step
        status.step_approvals.append(
            StepApproval(
                by=request.by,
                comment=request.comment,
                at=workflow.now(),
                step=step,
                percent=status.traffic_plan[step - 1],
            )
        )
        self._on_change()
