"""The Temporal Web UI in a real browser: find a deployment waiting for approval by its search
attributes, open it, and read its current details.

Debian's chromium and chromedriver (``make system-packages``, which ``make test`` runs), driven
by selenium; nothing is downloaded. The local stack runs with its Web UI and the BlueGreen*
search attributes registered, as ``make dev`` does. The screenshot of the deployment's page is
left in ``test-artifacts/web-ui-awaiting-approval.png`` for a person to look at.
"""

import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from cli import deployment_kinds, recent, starting
from local.processes import ROOT, free_port, temporal_cli, wait_for_port, wait_until
from local.stack import LocalStack, local_stack
from models.deployment import DeploymentRequest
from tests import dev_server
from tests.live_stack import client_output

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "test-artifacts" / "web-ui-awaiting-approval.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAIT = 60
"""Seconds for any one thing to appear: the deployment's phase, a page, an element."""
WAITING_FOR_APPROVAL = (
    'BlueGreenEnvironment="prod" AND BlueGreenPhase="awaiting_approval"'
    ' AND ExecutionStatus="Running"'
)
"""The first query in docs/operating.md: every running prod deployment waiting for approval."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local environment on free ports, with the Web UI and the search attributes."""
    config = tmp_path_factory.mktemp("web-ui") / "deploy.toml"
    with local_stack(
        ui=True, temporal_port=free_port(), ui_port=free_port(), config_path=config
    ) as s:
        assert s.ui_url is not None
        wait_for_port(int(s.ui_url.rpartition(":")[2]), WAIT)
        yield s


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Debian chromium; a profile of its own, and no calls to the internet."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert path.exists(), f"{path} is missing: `make system-packages` installs it"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # Without these, chromium's background calls out fail on a closed network and take
        # the page's connections down with them.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def phase_of(stack: LocalStack, deployment_id: str) -> str | None:
    """The phase ``client.py status`` reports; None while it cannot say (no worker answer yet)."""
    shown = client_output(stack, "status", deployment_id, "--json", timeout=WAIT)
    if shown.returncode != 0:
        return None
    phase: str = json.loads(shown.stdout)["phase"]
    return phase


@dataclass(frozen=True)
class Waiting:
    """The deployment waiting for approval, and another one running that does not wait."""

    deployment_id: str
    run_id: str
    other_id: str


@pytest.fixture(scope="module")
async def waiting(stack: LocalStack) -> AsyncIterator[Waiting]:
    """A deployment started with ``client.py deploy --require-approval``, once it waits; and a
    staging deployment that no worker runs (it stays in setting_up), for the queries to skip."""
    started = client_output(
        stack, *stack.deploy_args("2", "game:2", "--require-approval"), timeout=WAIT
    )
    assert started.returncode == 0, started.stderr
    deployment_id = f"deploy-{stack.resources.service}-{stack.environment}"
    wait_until(
        lambda: phase_of(stack, deployment_id) == "awaiting_approval",
        WAIT,
        f"{deployment_id} awaiting approval",
        stack.worker,
    )
    client = await connect(stack)
    staging = DeploymentRequest(
        service="game",
        environment="staging",
        version="3",
        image="game:3",
        target=stack.environment_config(),
    )
    other = await deployment_kinds.start(client, staging, "no-worker-polls-this")
    described = await client.get_workflow_handle(deployment_id).describe()
    # The list queries read the visibility store, which follows the workflows a moment later.
    await dev_server.wait_for(
        lambda: recent.recent(client, 10),
        lambda rows: (
            {(r["deployment_id"], r["phase"]) for r in rows}
            >= {(deployment_id, "awaiting_approval"), (other.id, "setting_up")}
        ),
        "both deployments listed in their phase",
    )
    yield Waiting(deployment_id, described.run_id, other.id)
    await other.terminate("end of test")


async def test_the_list_query_finds_it_from_the_cli_and_client_py(
    stack: LocalStack, waiting: Waiting
) -> None:
    client = await connect(stack)
    assert await starting.search_attributes_registered(client)
    listed = temporal_cli(
        stack.temporal_address, "workflow", "list", "--query", WAITING_FOR_APPROVAL
    )
    assert listed is not None
    assert [w["execution"]["workflowId"] for w in json.loads(listed)] == [waiting.deployment_id]

    rows = {row["deployment_id"]: row for row in await recent.recent(client, 10)}
    shown = ("service", "environment", "region", "version", "state", "phase")
    assert [rows[waiting.deployment_id][key] for key in shown] == [
        "game",
        "prod",
        "us-west-2",
        "2",
        "running",
        "awaiting_approval",
    ]
    assert [rows[waiting.other_id][key] for key in shown] == [
        "game",
        "staging",
        "us-west-2",
        "3",
        "running",
        "setting_up",
    ]


async def test_the_web_ui_lists_it_by_the_query_and_shows_its_details(
    stack: LocalStack, waiting: Waiting, browser: WebDriver
) -> None:
    deployment_id, run_id = waiting.deployment_id, waiting.run_id
    wait = WebDriverWait(browser, WAIT)

    # The Web UI's workflow list, filtered by the query as a person would type it.
    query = urllib.parse.quote(WAITING_FOR_APPROVAL)
    browser.get(f"{stack.ui_url}/namespaces/default/workflows?query={query}")
    link = wait.until(
        ec.element_to_be_clickable(
            (By.CSS_SELECTOR, f'a[href*="/workflows/{deployment_id}/{run_id}"]')
        )
    )
    assert listed_ids(browser) == {deployment_id}  # staging, running too, is left out
    link.click()

    # Its page, on the tab of the summary and details.
    wait.until(ec.url_contains(f"/workflows/{deployment_id}/{run_id}"))
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, 'a[href$="/user-metadata"]'))).click()
    # The summary and details set at start, then the current details the workflow keeps.
    frame_text(browser, "user-metadata-summary", "deploy game 2 to prod, us-west-2")
    frame_text(browser, "user-metadata-details", "waits for approval before the switch")
    shown = frame_text(browser, "user-metadata-current-details", "waiting for approval")
    assert "state: running, phase: awaiting_approval since" in shown
    assert "colors: blue (1, active before) → green (2); traffic on blue" in shown
    assert f"client.py approve {deployment_id}" in shown

    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.read_bytes().startswith(PNG_SIGNATURE)


async def connect(stack: LocalStack) -> Client:
    return await Client.connect(stack.temporal_address, data_converter=pydantic_data_converter)


def listed_ids(browser: WebDriver) -> set[str]:
    """The workflow IDs the Web UI's workflow list shows (its links to each workflow)."""
    links = browser.find_elements(By.CSS_SELECTOR, 'a[href*="/workflows/deploy-"]')
    hrefs = [link.get_attribute("href") or "" for link in links]
    return {href.split("/workflows/")[1].split("/")[0] for href in hrefs}


def frame_text(browser: WebDriver, frame_id: str, expected: str) -> str:
    """The text of the Markdown the UI renders in iframe ``frame_id``, once it shows
    ``expected``."""
    wait = WebDriverWait(browser, WAIT)
    frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"iframe#{frame_id}")))
    browser.switch_to.frame(frame)
    try:
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), expected))
        return browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()
