"""The AWS steps both workflows take on one environment's pair of colors: SSM, router, health."""

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import ecs, ssm, traffic
    from models.activities import (
        AlarmsInput,
        CheckHealthInput,
        ReadTaskDefinitionInput,
        RouterInput,
        ServiceRef,
        SetActiveColorInput,
        SetColorVersionInput,
        SetWeightsInput,
        SsmInput,
        SwitchTrafficInput,
    )
    from models.colors import Color
    from models.config import EnvironmentConfig
    from models.observations import ColorState, HealthObservation, RouterWeights
    from workflows.calls import Calls, StepFailed
    from workflows.options import CALL_RETRY


class AwsSteps:
    """One environment's SSM parameters, router and ECS services, through ``calls``."""

    def __init__(self, env: EnvironmentConfig, calls: Calls) -> None:
        self.env = env
        self.calls = calls

    async def read_active_state(self) -> ColorState:
        """SSM's active color and versions, refused unless the router sends all traffic there."""
        state = await self.calls.activity(
            ssm.read_color_state,
            SsmInput(region=self.env.region, ssm_prefix=self.env.ssm_prefix),
            summary="read the active color and versions from SSM",
        )
        weights = await self.calls.activity(
            traffic.read_router_weights,
            self.router_input(),
            summary=f"read the {self.env.router.kind} router's weights",
            read_only=True,
        )
        if weights.serving() != state.active_color:
            raise StepFailed(
                f"SSM says {state.active_color} is active but the router weights are "
                f"blue={weights.blue} green={weights.green}; make them agree first",
                "RouterMismatch",
            )
        return state

    async def check_health(self, color: Color) -> HealthObservation:
        """One health check of a color's service (and its target group, where configured)."""
        return await check_health(self.calls, self.health_input(color))

    def health_input(self, color: Color) -> CheckHealthInput:
        """What a health check of ``color`` looks at."""
        return CheckHealthInput(
            target=self.service(color), target_group_arn=self.env.color(color).target_group_arn
        )

    async def read_task_definition(self, color: Color) -> str | None:
        """The task definition ``color``'s service runs now (a read: a rollback abandons it)."""
        return await self.calls.activity(
            ecs.read_task_definition,
            ReadTaskDefinitionInput(target=self.service(color)),
            summary=f"read which task definition {color} runs",
            read_only=True,
        )

    async def set_active(self, color: Color, retry: RetryPolicy = CALL_RETRY) -> None:
        """SSM ``current_active_color`` := ``color``."""
        await self.calls.activity(
            ssm.set_active_color,
            SetActiveColorInput(
                region=self.env.region, ssm_prefix=self.env.ssm_prefix, color=color
            ),
            summary=f"SSM: {color} is the active color",
            retry=retry,
        )

    async def route_all_to(self, color: Color, retry: RetryPolicy = CALL_RETRY) -> None:
        """The router sends all traffic to ``color``."""
        await self.calls.activity(
            traffic.switch_traffic,
            SwitchTrafficInput(**self.router_input().model_dump(), to_color=color),
            summary=f"send all traffic to {color}",
            retry=retry,
        )

    async def set_weights(self, weights: RouterWeights, summary: str) -> None:
        """The router splits the traffic as ``weights`` says (a traffic step)."""
        await self.calls.activity(
            traffic.set_traffic_weights,
            SetWeightsInput(**self.router_input().model_dump(), weights=weights),
            summary=summary,
        )

    async def set_version(self, color: Color, version: str | None, retry: RetryPolicy) -> None:
        """SSM ``<color>/version`` := ``version`` (None deletes it)."""
        await self.calls.activity(
            ssm.set_color_version,
            SetColorVersionInput(
                region=self.env.region,
                ssm_prefix=self.env.ssm_prefix,
                color=color,
                version=version,
            ),
            summary=f"SSM: {color} runs {version or '(none)'}",
            retry=retry,
        )

    def alarms_input(self) -> AlarmsInput:
        """The bake's alarms, as the alarm activity reads them."""
        return AlarmsInput(region=self.env.region, alarm_names=self.env.bake.alarms)

    def service(self, color: Color) -> ServiceRef:
        """A color's ECS service, as the ECS activities take it."""
        return ServiceRef.of(self.env.region, self.env.ssm_prefix, color, self.env.color(color))

    def router_input(self) -> RouterInput:
        """The router with both colors, as the traffic activities take it."""
        env = self.env
        return RouterInput(region=env.region, router=env.router, blue=env.blue, green=env.green)


async def check_health(calls: Calls, request: CheckHealthInput) -> HealthObservation:
    """One health check of a color's service (a read: a rollback abandons it)."""
    return await calls.activity(
        ecs.check_health,
        request,
        summary=f"is {request.target.color} healthy?",
        read_only=True,
    )
