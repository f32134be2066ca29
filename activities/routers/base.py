"""What every router offers: read the two colors' weights, set them (all traffic to one color,
or a split for a traffic step)."""

from collections.abc import Iterable
from typing import Protocol

from temporalio.exceptions import ApplicationError

from models.colors import COLORS, Color, other_color
from models.observations import RouterWeights


class Router(Protocol):
    """Where the traffic of a blue/green pair goes. Weights are the router's own numbers."""

    def weights(self) -> RouterWeights:
        """The weights the router has now."""
        ...

    def send_all_to(self, color: Color) -> RouterWeights:
        """Give ``color`` all the traffic (weight 100, the other 0); the weights after."""
        ...

    def set_weights(self, wanted: RouterWeights) -> RouterWeights:
        """Split the traffic as ``wanted`` says (a traffic step); the weights after."""
        ...


ALL_TRAFFIC = 100


def all_to(color: Color) -> RouterWeights:
    """The weights that send everything to ``color``."""
    return RouterWeights.model_validate({color: ALL_TRAFFIC, other_color(color): 0})


def color_weights(
    targets: Iterable[tuple[str, int]], ids: dict[Color, str], where: str
) -> RouterWeights:
    """The colors' weights among a router's (target id, weight) pairs.

    A router that does not reference both colors is configured differently from what the
    deployment config says: a person must look, so the error is non-retryable.
    """
    found = {target_id: weight for target_id, weight in targets}
    missing = [f"{color} ({ids[color]})" for color in COLORS if ids[color] not in found]
    if missing:
        raise ApplicationError(
            f"{where} does not route to {' and '.join(missing)}; it routes to:"
            f" {', '.join(found) or 'nothing'}",
            type="RouterMismatch",
            non_retryable=True,
        )
    return RouterWeights(blue=found[ids["blue"]], green=found[ids["green"]])
