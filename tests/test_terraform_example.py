"""The Terraform example under examples/terraform/: it names what the code reads and writes.

Terraform itself is not run here (nothing downloads a provider). The test reads the .tf files
as text: the SSM parameter names against activities/ssm.py, the attributes the deployments
change under ``ignore_changes``, and the worker's policy read from iam/worker-policy.json with
every placeholder filled in, as the example's ``replace`` calls and statement filter do it.
"""

import json
import re

from activities.ssm import ACTIVE_COLOR, VERSION, parameter_name
from local.processes import ROOT
from models.colors import COLORS

EXAMPLE = ROOT / "examples" / "terraform"
MAIN = (EXAMPLE / "main.tf").read_text()
PREFIX = "${var.ssm_prefix}"


def resources(kind: str) -> dict[str, str]:
    """Each ``resource "<kind>" "<name>" { … }`` block of main.tf, by name."""
    blocks = {}
    for found in re.finditer(rf'resource "{kind}" "(\w+)" {{', MAIN):
        depth, end = 0, found.end() - 1
        for end in range(found.end() - 1, len(MAIN)):
            depth += {"{": 1, "}": -1}.get(MAIN[end], 0)
            if depth == 0:
                break
        blocks[found.group(1)] = MAIN[found.start() : end + 1]
    return blocks


def ignored(block: str) -> set[str]:
    """The attributes a block's ``lifecycle { ignore_changes = [...] }`` names."""
    found = re.search(r"ignore_changes\s*=\s*\[([^\]]*)\]", block)
    assert found, block
    return {name.strip() for name in found.group(1).split(",") if name.strip()}


def test_the_ssm_parameters_are_the_ones_the_code_reads_and_left_to_the_deployments() -> None:
    parameters = resources("aws_ssm_parameter")
    names = set()
    for block in parameters.values():
        [name] = re.findall(r'^\s*name\s*=\s*"([^"]+)"', block, re.MULTILINE)
        names |= (
            {name.replace("${each.key}", color) for color in COLORS}
            if "${each.key}" in name
            else {name}
        )
        assert ignored(block) == {"value"}
    assert names == {
        parameter_name(PREFIX, ACTIVE_COLOR),
        *(parameter_name(PREFIX, color, VERSION) for color in COLORS),
    }


def test_what_the_deployments_change_is_ignored_by_terraform() -> None:
    [service] = resources("aws_ecs_service").values()
    assert ignored(service) == {"desired_count", "task_definition"}
    assert "data.aws_ecs_task_definition.latest.arn" in service
    [listener] = resources("aws_lb_listener").values()
    assert ignored(listener) == {"default_action"}
    assert listener.count("target_group {") == len(COLORS)


def test_the_worker_policy_is_the_repository_s_with_every_placeholder_filled() -> None:
    [default] = re.findall(r'"\$\{path\.module\}/([^"]+worker-policy\.json)"', MAIN)
    path = (EXAMPLE / default).resolve()
    assert path == ROOT / "iam" / "worker-policy.json"

    text = path.read_text()
    replaced = re.findall(r'^\s*"([^"]*YOUR_[A-Z_]+)", ', MAIN, re.MULTILINE)
    for placeholder in replaced:
        assert placeholder in text, f"main.tf replaces {placeholder}, which the policy lacks"
        text = text.replace(placeholder, "filled")
    dropped = set(re.findall(r'statement\.Sid != "(\w+)"', MAIN))
    statements = [s for s in json.loads(text)["Statement"] if s["Sid"] not in dropped]
    left = re.findall(r"YOUR_[A-Z_]+", json.dumps(statements))
    assert not left, f"placeholders main.tf does not fill in: {sorted(set(left))}"
    assert dropped == {"WeightAppMeshRoutes"}


def test_the_example_is_documented() -> None:
    page = (ROOT / "docs" / "terraform.md").read_text()
    for name in ("main.tf", "variables.tf", "outputs.tf"):
        assert (EXAMPLE / name).is_file()
        assert f"examples/terraform/{name}" in page
