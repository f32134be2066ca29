"""What an environment looks like right now: SSM, the router, both colors' ECS services.

Read with the worker's own activities, called as plain functions, so the demo sees SSM, the
router and ECS exactly as the workflow does.
"""

from pydantic import BaseModel

from activities.ecs import check_health
from activities.ssm import read_color_state
from activities.traffic import read_router_weights
from models.activities import CheckHealthInput, RouterInput, ServiceRef, SsmInput
from models.colors import COLORS, Color, other_color
from models.config import EnvironmentConfig
from models.observations import ColorState, HealthObservation, RouterWeights, task_definition_name


class EnvironmentState(BaseModel):
    """One environment's state: who is active, where traffic goes, what each color runs."""

    ssm_prefix: str
    ssm: ColorState
    weights: RouterWeights
    services: dict[Color, HealthObservation]
    """Each color's ECS service: counts, rollout, task definition (and target health)."""
    where: dict[Color, str]
    """``cluster/service`` of each color, for people."""


def read_state(env: EnvironmentConfig) -> EnvironmentState:
    """Read SSM, the router and both colors' services (boto3 must point at the right AWS)."""
    services: dict[Color, HealthObservation] = {}
    for color in COLORS:
        config = env.color(color)
        ref = ServiceRef.of(env.region, env.ssm_prefix, color, config)
        services[color] = check_health(
            CheckHealthInput(target=ref, target_group_arn=config.target_group_arn)
        )
    return EnvironmentState(
        ssm_prefix=env.ssm_prefix,
        ssm=read_color_state(SsmInput(region=env.region, ssm_prefix=env.ssm_prefix)),
        weights=read_router_weights(
            RouterInput(region=env.region, router=env.router, blue=env.blue, green=env.green)
        ),
        services=services,
        where={c: f"{env.color(c).cluster}/{env.color(c).service}" for c in COLORS},
    )


def format_state(state: EnvironmentState) -> str:
    """A few lines for a terminal."""
    versions = ", ".join(f"{c} {state.ssm.versions.get(c) or '(none)'}" for c in COLORS)
    lines = [
        f"  SSM {state.ssm_prefix}: active color {state.ssm.active_color}; versions: {versions}",
        f"  router weights: blue {state.weights.blue}, green {state.weights.green}",
    ]
    for color in COLORS:
        service = state.services[color]
        task_definition = task_definition_name(service.task_definition_arn or "none")
        lines.append(
            f"  ECS {color:<5} {state.where[color]}: desired {service.desired_count},"
            f" running {service.running_count}, task definition {task_definition},"
            f" rollout {service.rollout_state or '-'} ({service.reason})"
        )
    return "\n".join(lines)


def describe_state(env: EnvironmentConfig) -> str:
    """``format_state(read_state(env))``."""
    return format_state(read_state(env))


def mismatches(
    state: EnvironmentState, active: Color, version: str, desired_count: int
) -> list[str]:
    """How ``state`` differs from a finished deployment of ``version`` to ``active`` that shut
    the old color down; empty when it does not."""
    old = other_color(active)
    found = {
        "SSM active color": (state.ssm.active_color, active),
        f"SSM {active} version": (state.ssm.versions.get(active), version),
        "color receiving all traffic": (state.weights.serving(), active),
        f"{active} desired count": (state.services[active].desired_count, desired_count),
        f"{active} running count": (state.services[active].running_count, desired_count),
        f"{old} desired count": (state.services[old].desired_count, 0),
    }
    return [
        f"{what} is {got}, expected {want}" for what, (got, want) in found.items() if got != want
    ]
