"""The two colors of a blue/green pair."""

from typing import Literal

Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")


def other_color(color: Color) -> Color:
    """The color that is not ``color``."""
    return "green" if color == "blue" else "blue"
