"""ALB router: the weights of the two colors' target groups in a forward action.

The forward action is the listener's default action, or a listener rule's when ``rule_arn`` is
set. Everything else in the actions (stickiness, other actions, their order) is written back as
it was read.
"""

import copy
from typing import TYPE_CHECKING, Any, cast

from temporalio.exceptions import ApplicationError

from activities.aws import aws_call, aws_client
from activities.routers.base import all_to, color_weights
from models.colors import COLORS, Color
from models.config import AlbRouter
from models.observations import RouterWeights

if TYPE_CHECKING:
    from mypy_boto3_elbv2.type_defs import ActionTypeDef

Action = dict[str, Any]


class AlbListenerRouter:
    """Weighted forwarding to the blue and green target groups of one listener (or rule)."""

    def __init__(self, region: str, config: AlbRouter, target_groups: dict[Color, str]) -> None:
        self._elbv2 = aws_client("elbv2", region)
        self._config = config
        self._target_groups = target_groups
        self._where = (
            f"rule {config.rule_arn}" if config.rule_arn else f"listener {config.listener_arn}"
        )

    def weights(self) -> RouterWeights:
        return self._weights(self._read())

    def send_all_to(self, color: Color) -> RouterWeights:
        return self.set_weights(all_to(color))

    def set_weights(self, wanted: RouterWeights) -> RouterWeights:
        actions = self._read()
        if self._weights(actions) == wanted:
            return wanted
        forward = self._forward(actions)
        # With two target groups AWS accepts them only in ForwardConfig, not in TargetGroupArn.
        forward.pop("TargetGroupArn", None)
        weight_of = {self._target_groups[c]: getattr(wanted, c) for c in COLORS}
        for group in forward["ForwardConfig"]["TargetGroups"]:
            if group.get("TargetGroupArn") in weight_of:
                group["Weight"] = weight_of[group["TargetGroupArn"]]
        return self._weights(self._write(actions))

    def _read(self) -> list[Action]:
        if self._config.rule_arn:
            with aws_call("elbv2.DescribeRules"):
                rules = self._elbv2.describe_rules(RuleArns=[self._config.rule_arn])["Rules"]
            actions: Any = rules[0].get("Actions", [])
        else:
            with aws_call("elbv2.DescribeListeners"):
                listeners = self._elbv2.describe_listeners(
                    ListenerArns=[self._config.listener_arn]
                )["Listeners"]
            actions = listeners[0].get("DefaultActions", [])
        return copy.deepcopy(cast(list[Action], actions))

    def _write(self, actions: list[Action]) -> list[Action]:
        sent = cast("list[ActionTypeDef]", actions)
        if self._config.rule_arn:
            with aws_call("elbv2.ModifyRule"):
                rules = self._elbv2.modify_rule(RuleArn=self._config.rule_arn, Actions=sent)
            written: Any = rules["Rules"][0].get("Actions", [])
        else:
            with aws_call("elbv2.ModifyListener"):
                listeners = self._elbv2.modify_listener(
                    ListenerArn=self._config.listener_arn, DefaultActions=sent
                )
            written = listeners["Listeners"][0].get("DefaultActions", [])
        return cast(list[Action], written)

    def _forward(self, actions: list[Action]) -> Action:
        for action in actions:
            if action.get("Type") == "forward":
                return action
        raise ApplicationError(
            f"{self._where} has no forward action (it has: "
            f"{', '.join(str(a.get('Type')) for a in actions) or 'none'})",
            type="RouterMismatch",
            non_retryable=True,
        )

    def _weights(self, actions: list[Action]) -> RouterWeights:
        forward = self._forward(actions)
        groups = forward.get("ForwardConfig", {}).get("TargetGroups")
        if groups is None:
            # A plain forward to one target group: the other color is not routed at all.
            groups = [{"TargetGroupArn": forward.get("TargetGroupArn"), "Weight": 1}]
        targets = [(str(g.get("TargetGroupArn")), int(g.get("Weight", 1))) for g in groups]
        return color_weights(targets, self._target_groups, self._where)
