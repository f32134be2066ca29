"""Switch traffic to the other color, still running after a deployment kept it.

The instant way back that ``shutdown_inactive_cluster = false`` leaves open: no new task
definition, no waiting for tasks to start, just SSM and the router.
"""

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import connections
    from models.activities import ConnectionsInput
    from models.colors import other_color
    from models.config import expand_url
    from models.switch import SwitchRequest, SwitchResult
    from workflows import lease
    from workflows.aws_steps import AwsSteps
    from workflows.calls import Calls, StepFailed
    from workflows.options import RESTORE_RETRY


@workflow.defn(name="SwitchBack")
class SwitchBack:
    """Check that the inactive color runs and is healthy, then make it the active one.

    Refused (``ApplicationError`` of type ``SwitchRefused``, nothing changed) when the other color
    is not running or not healthy; a failed switch (``SwitchFailed``) has put SSM back.
    """

    @workflow.run
    async def run(self, request: SwitchRequest) -> SwitchResult:
        """Switch, or refuse with the reason; the result says what was done."""
        held = await lease.take(request.service, request.environment)
        if held.refusal is not None:
            raise _refused(held.refusal)
        return await held.held_during(self._switch(request))

    async def _switch(self, request: SwitchRequest) -> SwitchResult:
        env = request.target
        aws = AwsSteps(env, Calls())
        try:
            state = await aws.read_active_state()
            old = state.active_color
            new = other_color(old)
            workflow.set_current_details(f"checking that {new} runs and is healthy")
            health = await aws.check_health(new)
        except StepFailed as failure:
            raise _refused(failure.reason) from None
        if health.desired_count == 0:
            raise _refused(
                f"{new} is not running (desired count 0): deploy the version you want instead"
            )
        if not health.healthy:
            raise _refused(f"{new} is not healthy: {health.reason}")

        workflow.set_current_details(f"switching traffic {old} → {new}")
        try:
            await aws.set_active(new)
        except StepFailed as failure:
            raise _failed(failure.reason) from None
        try:
            await aws.route_all_to(new)
        except StepFailed as failure:
            # Traffic never moved: SSM must say so again.
            try:
                await aws.set_active(old, RESTORE_RETRY)
            except StepFailed as err:
                raise _failed(
                    f"{failure.reason}; putting SSM back to {old} failed too, needs a person:"
                    f" {err.reason}"
                ) from None
            raise _failed(f"{failure.reason} (SSM put back to {old})") from None

        warnings = []
        conns = env.connections
        if conns and conns.notify_url:
            try:
                await aws.calls.activity(
                    connections.notify_reconnect,
                    ConnectionsInput(
                        url=expand_url(conns.notify_url, env.color(old).url),
                        version_header=conns.version_header,
                        version=state.versions.get(old) or "",
                    ),
                    summary=f"tell {old}'s clients to reconnect after their game",
                )
            except StepFailed as failure:
                warnings.append(f"reconnect notification failed: {failure.reason}")
        workflow.set_current_details(f"switched traffic {old} → {new}")
        return SwitchResult(
            switch_id=workflow.info().workflow_id,
            service=request.service,
            environment=request.environment,
            region=env.region,
            from_color=old,
            to_color=new,
            versions=dict(state.versions),
            health=health,
            switched_at=workflow.now(),
            requested_by=request.requested_by,
            reason=request.reason,
            warnings=warnings,
        )


def _refused(reason: str) -> ApplicationError:
    return ApplicationError(f"refused: {reason}", type="SwitchRefused", non_retryable=True)


def _failed(reason: str) -> ApplicationError:
    return ApplicationError(f"switch failed: {reason}", type="SwitchFailed", non_retryable=True)
