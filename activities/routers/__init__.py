"""Routers: what decides which color receives the traffic (ALB weights or App Mesh routes).

Each router reads the two colors' weights and sends all traffic to one color; ``router_for``
picks the implementation the environment's config names.
"""

from temporalio.exceptions import ApplicationError

from activities.routers.alb import AlbListenerRouter
from activities.routers.app_mesh import AppMeshRouteRouter
from activities.routers.base import Router
from models.activities import RouterInput
from models.colors import COLORS, Color
from models.config import AlbRouter

__all__ = ["Router", "router_for"]


def router_for(arg: RouterInput) -> Router:
    """The router ``arg.router`` configures, for the pair of colors in ``arg``."""
    config = arg.router
    if isinstance(config, AlbRouter):
        return AlbListenerRouter(arg.region, config, _per_color(arg, "target_group_arn"))
    return AppMeshRouteRouter(arg.region, config, _per_color(arg, "virtual_node"))


def _per_color(arg: RouterInput, field: str) -> dict[Color, str]:
    """Each color's ``field`` (its target group, its virtual node), which the router needs."""
    values: dict[Color, str] = {}
    for color in COLORS:
        value = getattr(arg.blue if color == "blue" else arg.green, field)
        if not value:
            raise ApplicationError(
                f"{color}.{field} is required with the {arg.router.kind} router",
                type="ConfigError",
                non_retryable=True,
            )
        values[color] = value
    return values
