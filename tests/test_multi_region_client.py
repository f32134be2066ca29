"""client.py on a multi-region environment: deploy, status, list, approve and rollback on the dev
server, with an in-process worker running both deployment workflows over one FakeAws per region.

The environment has two regions (us-west-2, us-east-1) in one wave, each with color URLs of its
own so ``RegionalFakeAws`` can tell the regions' HTTP calls apart. Each test uses an environment
name of its own, so each has its own deployment ID (``deploy-game-<name>``).
"""

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from models.config import EnvironmentConfig
from models.deployment import Phase, State
from models.multi_region import MultiRegionStatus
from tests import dev_server
from tests.dev_server import Done, Server, refused
from tests.factories import ENVIRONMENT
from tests.workflows.fake_aws import FakeAws
from tests.workflows.regional_fake_aws import RegionalFakeAws
from workflows.multi_region import MultiRegionDeployment

QUEUE = f"regions-{uuid.uuid4().hex[:8]}"
REGIONS = ["us-west-2", "us-east-1"]
HOLD_BAKE = {"duration": "1h", "poll_interval": "1m"}
NEVER_HEALTHY_FAST = {"health": {"timeout": "3s", "poll_interval": "1s"}}
"""A short health wait: the dev server runs in real time."""


@pytest.fixture(scope="module")
async def server(temporal: str) -> AsyncIterator[Server[RegionalFakeAws]]:
    """One worker for the module: a FakeAws per region behind the activities."""
    async with dev_server.serving(temporal, RegionalFakeAws(regions={}), QUEUE) as served:
        yield served


def color_urls(region: str) -> dict[str, Any]:
    """Blue's and green's URLs in ``region``: ports of its own per region."""
    port = 29000 + 10 * REGIONS.index(region)
    return {
        "blue": {"url": f"http://127.0.0.1:{port + 1}"},
        "green": {"url": f"http://127.0.0.1:{port + 2}"},
    }


def two_regions(
    in_region: dict[str, dict[str, Any]] | None = None, **overrides: Any
) -> dict[str, Any]:
    """The test environment in us-west-2 and us-east-1; ``in_region`` adds per-region keys."""
    extra = in_region or {}
    return ENVIRONMENT | {
        "regions": REGIONS,
        "in_region": {region: color_urls(region) | extra.get(region, {}) for region in REGIONS},
        **overrides,
    }


@dataclass
class Lab:
    """One test: its environment, a fresh FakeAws per region, and the deployments to clean up."""

    server: Server[RegionalFakeAws]
    tmp: Path
    name: str = ""
    config: Path = Path()
    started: list[str] = field(default_factory=list)

    def environment(self, name: str, fakes: dict[str, FakeAws] | None = None, **config: Any) -> str:
        """Write environment ``name`` (``two_regions(**config)``) and reset the fakes; its ID."""
        self.name = name
        table = two_regions(**config)
        self.config = dev_server.write_config(self.tmp / "deploy.toml", {name: table})
        regional = RegionalFakeAws.of(
            EnvironmentConfig.model_validate(table),
            **{region.replace("-", "_"): fake for region, fake in (fakes or {}).items()},
        )
        vars(self.server.aws).update(vars(regional))
        self.started.append(self.deployment_id)
        return self.deployment_id

    @property
    def deployment_id(self) -> str:
        return f"deploy-game-{self.name}"

    def aws(self, region: str) -> FakeAws:
        return self.server.aws.regions[region]

    async def deploy(self, *options: str) -> Done:
        """client.py deploy of game 2 to this test's environment."""
        return await self.client_py(
            "deploy", "--config", str(self.config), "--environment", self.name,
            "--version", "2", "--image", "game:2", *options,
        )  # fmt: skip

    async def client_py(self, *args: str) -> Done:
        return await dev_server.client_py(self.server.address, QUEUE, *args)

    def handle(self, workflow_id: str | None = None) -> WorkflowHandle[Any, Any]:
        return self.server.client.get_workflow_handle(workflow_id or self.deployment_id)

    async def status(self) -> MultiRegionStatus:
        return await self.handle().query(MultiRegionDeployment.status)

    async def wait_for_regions(
        self, check: Callable[[Phase], bool], what: str
    ) -> MultiRegionStatus:
        """Poll the parent's status until every region reports a phase for which ``check`` holds."""

        def every_region(status: MultiRegionStatus) -> bool:
            reports = [p.status for p in status.regions.values()]
            return all(s is not None and check(s.phase) for s in reports)

        return await dev_server.wait_for(self.status, every_region, what)


@pytest.fixture
async def lab(server: Server[RegionalFakeAws], tmp_path: Path) -> AsyncIterator[Lab]:
    """A fresh lab; the test's deployment and its regions terminated afterwards if still running."""
    lab = Lab(server, tmp_path)
    try:
        yield lab
    finally:
        ids = [i for d in lab.started for i in (d, *(f"{d}-{r}" for r in REGIONS))]
        await dev_server.terminate_running(
            [lab.handle(i) for i in ids if await _exists(lab.server.client, i)]
        )


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


def switched(aws: FakeAws) -> None:
    """The region runs version 2 on green with all the traffic, blue at zero."""
    assert (aws.active, aws.weights) == ("green", {"blue": 0, "green": 100})
    assert aws.desired == {"blue": 0, "green": 2}
    assert aws.versions == {"blue": "1", "green": "2"}


def blue_serves_alone(aws: FakeAws) -> None:
    """Production as before the deployment: blue active with all traffic, green at zero."""
    assert (aws.active, aws.weights) == ("blue", {"blue": 100, "green": 0})
    assert aws.desired == {"blue": 2, "green": 0}
    assert aws.versions == {"blue": "1", "green": None}


def table_row(output: str, region: str) -> list[str]:
    """The cells of ``region``'s row in the status table."""
    [row] = [line for line in output.splitlines() if line.startswith(f"  {region}  ")]
    return re.split(r"\s{2,}", row.strip())


# --- deploy --------------------------------------------------------------------------------------


async def test_deploy_wait_json_over_two_regions_succeeds_in_both(lab: Lab) -> None:
    deployment = lab.environment("both")

    done = await lab.deploy("--wait", "--json")

    assert done.returncode == 0, done
    document = json.loads(done.stdout)
    assert (document["deployment_id"], document["state"], document["exit_code"]) == (
        deployment,
        "succeeded",
        0,
    )
    assert document["waves"] == [REGIONS]
    for region in REGIONS:
        detail = document["regions"][region]
        assert detail["workflow_id"] == f"{deployment}-{region}"
        assert (detail["state"], detail["phase_reached"]) == ("succeeded", "cleaning_up")
        assert detail["status"]["region"] == region
        assert detail["status"]["versions_after"] == {"blue": "1", "green": "2"}
        switched(lab.aws(region))
    # A line per region phase, on stderr (stdout is the JSON document).
    assert (
        done.stderr.startswith(f"started deployment {deployment} (run ")
        and f"game 2 → both, 2 regions ({', '.join(REGIONS)})" in done.stderr.splitlines()[0]
    )
    for region in REGIONS:
        for phase in ("setting_up", "switching", "cleaning_up", "done"):
            assert re.search(rf"^\d\d:\d\d:\d\d {region} +{phase} ", done.stderr, re.M), phase
    assert re.search(r"us-east-1  switching +traffic blue → green$", done.stderr, re.M)

    description = await lab.handle().describe()
    assert description.workflow_type == "MultiRegionDeployment"
    summary = await description.static_summary()
    assert summary == "deploy game 2 to both in 2 regions (us-west-2, us-east-1)"
    assert (await description.memo())["regions"] == REGIONS

    listed = await lab.client_py("list")

    assert listed.returncode == 0, listed
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    # status, state, phase (here "?": this dev server has no search attributes registered),
    # then, after the start date and time, service … version.
    assert rows[deployment][1:4] == ["COMPLETED", "succeeded", "?"]
    assert rows[deployment][1:2] + rows[deployment][6:] == [
        "COMPLETED",
        "game",
        "both",
        "us-west-2,us-east-1",
        "2",
    ]
    for region in REGIONS:
        assert rows[f"{deployment}-{region}"][6:] == ["game", "both", region, "2"]


async def test_a_region_that_never_gets_healthy_fails_and_the_other_rolls_back(lab: Lab) -> None:
    deployment = lab.environment(
        "unhealthy",
        fakes={"us-east-1": FakeAws(healthy_after=None)},
        in_region={"us-east-1": NEVER_HEALTHY_FAST},
        bake=HOLD_BAKE,  # us-west-2 is still baking when us-east-1 gives up
    )

    done = await lab.deploy("--wait")

    assert done.returncode == 1, done
    lines = done.stdout.splitlines()
    assert f"deployment {deployment}: FAILED" in lines
    assert table_row(done.stdout, "us-east-1")[:4] == [
        "us-east-1",
        "1",
        "failed",
        "waiting_for_health",
    ]
    assert table_row(done.stdout, "us-west-2")[:5] == [
        "us-west-2", "1", "rolled_back", "baking", "blue → blue",
    ]  # fmt: skip
    assert any(line.startswith("  us-east-1: failed in waiting_for_health: ") for line in lines)
    assert any(
        line.startswith("  us-west-2: rolled back in baking: ")
        and "us-east-1 failed (fail fast)" in line
        for line in lines
    )
    assert "    restored: traffic back to blue" in lines
    assert any(line.startswith("  reason: us-east-1: ") for line in lines)
    for region in REGIONS:
        blue_serves_alone(lab.aws(region))

    status = await lab.client_py("status", deployment)
    as_json = await lab.client_py("status", deployment, "--json")
    child = await lab.client_py("status", f"{deployment}-us-east-1")

    assert status.returncode == 1, status
    assert status.stdout == done.stdout[done.stdout.index(f"deployment {deployment}:") :]
    document = json.loads(as_json.stdout)
    assert (as_json.returncode, document["state"], document["exit_code"]) == (1, "failed", 1)
    assert {r: d["state"] for r, d in document["regions"].items()} == {
        "us-west-2": "rolled_back",
        "us-east-1": "failed",
    }
    assert child.returncode == 1, child
    assert child.stdout.startswith(f"deployment {deployment}-us-east-1: FAILED\n")
    assert "  phase reached: waiting_for_health" in child.stdout


async def test_region_selects_one_region_of_two(lab: Lab) -> None:
    deployment = lab.environment("one")

    done = await lab.deploy("--region", "us-east-1", "--wait", "--json")

    assert done.returncode == 0, done
    document = json.loads(done.stdout)
    assert (document["waves"], list(document["regions"])) == ([["us-east-1"]], ["us-east-1"])
    assert "game 2 → one, 1 region (us-east-1)" in done.stderr
    switched(lab.aws("us-east-1"))
    assert lab.aws("us-west-2").calls == []
    blue_serves_alone(lab.aws("us-west-2"))
    assert not await _exists(lab.server.client, f"{deployment}-us-west-2")


# --- approve and rollback on the parent ----------------------------------------------------------


async def test_approve_on_the_parent_releases_both_regions(lab: Lab) -> None:
    deployment = lab.environment("gate")
    started = await lab.deploy("--require-approval", "--switch-together")
    assert started.returncode == 0, started
    assert started.stdout.splitlines()[1] == (
        f"it waits for approval before switching: client.py approve {deployment}"
    )
    await lab.wait_for_regions(lambda p: p == Phase.AWAITING_APPROVAL, "all waiting")

    waiting = await lab.client_py("status", deployment)

    assert waiting.returncode == 0, waiting
    assert table_row(waiting.stdout, "us-east-1")[2:4] == ["running", "awaiting_approval"]
    assert (
        f"  waiting for approval (us-west-2, us-east-1 ready): client.py approve {deployment}"
        in waiting.stdout.splitlines()
    )

    done = await lab.client_py("approve", deployment, "--by", "alice", "--comment", "canary ok")

    assert done.returncode == 0, done
    assert done.stdout == f"approved {deployment} as alice: us-west-2, us-east-1 switching\n"
    final = await dev_server.wait_for(lab.status, lambda s: s.state != State.RUNNING, "ended")
    assert final.state == State.SUCCEEDED
    assert final.approval is not None and final.approval.by == "alice"
    for region in REGIONS:
        region_status = final.regions[region].status
        assert region_status is not None and region_status.approval is not None
        assert region_status.approval.by == "alice"
        switched(lab.aws(region))

    again = await lab.client_py("approve", deployment)
    too_late = await lab.client_py("rollback", deployment, "--reason", "bug")

    refused(again, f"{deployment} already ended (succeeded); nothing waits for approval")
    refused(too_late, f"{deployment} already ended (succeeded); to go back, deploy version 1 again")


async def test_approving_one_region_directly_lets_only_that_one_switch(lab: Lab) -> None:
    deployment = lab.environment("child", bake=HOLD_BAKE)
    await lab.deploy("--require-approval")
    await lab.wait_for_regions(lambda p: p == Phase.AWAITING_APPROVAL, "all waiting")

    done = await lab.client_py("approve", f"{deployment}-us-east-1", "--by", "carol")

    assert done.returncode == 0, done
    assert done.stdout == f"approved {deployment}-us-east-1 as carol: switching blue → green\n"
    await dev_server.wait_for(
        lab.status,
        lambda s: (
            s.regions["us-east-1"].status is not None
            and s.regions["us-east-1"].status.phase == Phase.BAKING
        ),
        "us-east-1 baking",
    )
    assert lab.aws("us-east-1").active == "green"
    assert lab.aws("us-west-2").active == "blue"

    parent = await lab.client_py("approve", deployment, "--by", "alice")

    assert parent.returncode == 0, parent
    assert parent.stdout == f"approved {deployment} as alice: us-west-2 switching\n"


async def test_rollback_on_the_parent_rolls_both_regions_back(lab: Lab) -> None:
    deployment = lab.environment("bake", bake=HOLD_BAKE)
    started = await lab.deploy()
    assert started.returncode == 0, started
    await lab.wait_for_regions(lambda p: p == Phase.BAKING, "all baking")
    for region in REGIONS:
        assert lab.aws(region).active == "green"

    second = await lab.deploy()
    switch = await lab.client_py(
        "switch", "--config", str(lab.config), "--environment", "bake", "--region", "us-east-1"
    )

    refused(second, f"deployment {deployment} (run ")
    assert "of version 2 started " in second.stderr
    refused(
        switch,
        f"deployment {deployment} (phases us-west-2 baking, us-east-1 baking) is still running",
    )

    done = await lab.client_py("rollback", deployment, "--reason", "players desync", "--by", "bob")

    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"rollback of {deployment} from bob accepted: putting production back in"
        " us-west-2 (baking), us-east-1 (baking)"
    )
    for region in REGIONS:
        assert re.search(
            rf"^\d\d:\d\d:\d\d {region} +compensating +restoring production$", done.stdout, re.M
        )
        assert table_row(done.stdout, region)[2:5] == ["rolled_back", "baking", "blue → blue"]
        blue_serves_alone(lab.aws(region))
    assert f"deployment {deployment}: ROLLED_BACK" in lines
    assert any(line.startswith("  rollback requested by bob at ") for line in lines)
    # The parent's reason names a region (workflow quirk, see the report), then the rollback.
    assert any(
        line.startswith("  reason: ") and line.endswith("rollback requested by bob: players desync")
        for line in lines
    ), done.stdout

    again = await lab.client_py("rollback", deployment, "--reason", "again")

    refused(again, f"{deployment} already ended (rolled_back); see client.py status {deployment}")
