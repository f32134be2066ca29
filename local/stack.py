"""The whole local environment as one context manager: ``make demo``, ``make dev``, the tests.

    with local_stack(ui=False, temporal_port=free_port(), ui_port=None) as stack:
        command = stack.client_command(*stack.deploy_args("2", "game:2", "--wait"))
        subprocess.run(command, env=stack.process_env())

Starts, in order: moto (AWS), Temporal's dev server, the demo's AWS resources in moto and the
deploy.toml describing them, the data plane behind moto (``local/data_plane``: blue's game-server
tasks of version 1, HAProxy in front of them, each color's gateway), WebSocket players through
HAProxy (``local/load``), and a worker. Everything is stopped on the way out, whatever the way
out is. ``regions`` (default: us-west-2 alone) makes the same in each region, with its own
resources, tasks and HAProxy frontend, and one environment listing them all
(``local_stack(regions=demo_regions(2))``).
"""

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from local.aws_resources import (
    INITIAL_VERSION,
    DemoResources,
    create_demo_resources,
    write_demo_config,
)
from local.data_plane.running import DataPlane, color_url, data_plane, gateway_url
from local.load import LoadSettings, load_in_background
from local.notify_receiver import NotificationReceiver, notify_tables, worker_env
from local.processes import (
    ROOT,
    STATE_DIR,
    environ,
    free_port,
    moto_server,
    temporal_dev_server,
    wait_until,
    worker,
    worker_log,
)
from models.colors import Color
from models.config import EnvironmentConfig, expand_url, load_config
from workflows.search_attributes import REGISTRATIONS

DEMO_CONFIG = STATE_DIR / "demo" / "deploy.toml"
DEMO_REGIONS = ("us-west-2", "us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1")
"""The regions of a multi-region local environment, in this order; the first is the default."""
REGION = DEMO_REGIONS[0]


def demo_regions(count: int) -> list[str]:
    """The first ``count`` of DEMO_REGIONS; ValueError outside 1 … len(DEMO_REGIONS)."""
    if not 1 <= count <= len(DEMO_REGIONS):
        raise ValueError(f"the local environment has 1 to {len(DEMO_REGIONS)} regions, not {count}")
    return list(DEMO_REGIONS[:count])


@dataclass(frozen=True)
class LocalStack:
    """What ``local_stack`` started: how to reach it and what it created."""

    env: dict[str, str]
    """TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the AWS variables pointing at moto."""
    config_path: Path
    environment: str
    temporal_address: str
    ui_url: str | None
    resources: DemoResources
    """The first region's resources: those the environment's own keys describe."""
    worker: subprocess.Popen[bytes] | None
    regional: dict[str, DemoResources]
    """Every region's resources, the first region first."""
    data_plane: DataPlane
    """What runs behind moto: game-server tasks, HAProxy, the colors' gateway."""
    notifications: NotificationReceiver | None = None
    """Where the deployments' notifications go, when the stack was asked to send them."""

    @property
    def regions(self) -> list[str]:
        """The environment's regions, in the config's order."""
        return list(self.regional)

    def environment_config(self) -> EnvironmentConfig:
        """The environment's section of the generated deploy.toml."""
        return load_config(self.config_path).environment(self.environment)

    def region_config(self, region: str) -> EnvironmentConfig:
        """The environment as ``region`` sees it (its ``in_region`` overrides applied)."""
        return self.environment_config().for_region(region)

    def players_on(self, region: str, color: Color, version: str) -> int:
        """What ``color``'s game server in ``region`` counts on ``version``, asked as the drain
        phase asks."""
        connections = self.region_config(region).connections
        if connections is None:
            raise RuntimeError(f"{self.config_path} has no [connections] section")
        url = expand_url(connections.url, self.regional[region].urls[color])
        request = urllib.request.Request(url, headers={connections.version_header: version})
        with urllib.request.urlopen(request, timeout=5) as answer:
            count: int = json.loads(answer.read())["connections"]
            return count

    def process_env(self) -> dict[str, str]:
        """This process's environment with ``env`` on top: for running client.py."""
        return {**os.environ, **self.env}

    def client_command(self, *args: str) -> list[str]:
        """``python client.py ARGS`` with this interpreter."""
        return [sys.executable, str(ROOT / "client.py"), *args]

    def deploy_args(
        self, version: str, image: str, *options: str, config: Path | None = None
    ) -> list[str]:
        """The arguments of ``client.py deploy`` of ``version`` to this stack's environment,
        with its deploy.toml or ``config``."""
        return [
            "deploy",
            "--config",
            str(config or self.config_path),
            "--environment",
            self.environment,
            "--version",
            version,
            "--image",
            image,
            *options,
        ]

    def run_client(self, *args: str, timeout: float = 300) -> int:
        """Run client.py with its output on this terminal; its exit code.

        Fails (RuntimeError) as soon as the worker dies: the client would otherwise wait for a
        deployment nobody runs; TimeoutError after ``timeout`` seconds.
        """
        process = subprocess.Popen(self.client_command(*args), cwd=ROOT, env=self.process_env())
        try:
            wait_until(
                lambda: process.poll() is not None,
                timeout,
                "client.py finished",
                self.worker,
                worker_log(self.temporal_address),
            )
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait()
        return process.returncode


@contextmanager
def local_stack(
    ui: bool = False,
    temporal_port: int = 7233,
    ui_port: int | None = 8233,
    *,
    config_path: Path = DEMO_CONFIG,
    db_file: Path | None = None,
    service: str = "game",
    environment: str = "prod",
    players: int = 4,
    game_seconds: float = 3,
    start_worker: bool = True,
    worker_args: Sequence[str] = ("worker.py",),
    regions: Sequence[str] = (REGION,),
    dynamic_config: Mapping[str, object] | None = None,
    search_attributes: bool = True,
    analysis: bool = False,
    notifications: NotificationReceiver | None = None,
    say: Callable[[str], object] = lambda _: None,
) -> Iterator[LocalStack]:
    """Start everything; yield how to reach it; stop everything, also on Ctrl-C or an error.

    ``ui`` False runs Temporal without its Web UI (``ui_port`` is then unused). Blue starts
    active on version 1 with ``players`` connected through HAProxy (``python -m local.load``),
    playing games of ``game_seconds``; told to reconnect, each finishes its game and connects
    again, landing wherever HAProxy sends it (``seated``). Green is at zero tasks. So in each of
    ``regions``; the config lists them all.
    ``say`` receives a line for each thing started (the demo passes ``print``). ``db_file``
    holds Temporal's state for this run (a fresh file each time), otherwise it is in memory.
    ``dynamic_config`` goes to the dev server (``temporal_dev_server``), ``worker_args`` to
    Python for the worker (``worker``). ``search_attributes`` registers the BlueGreen* search
    attributes (``workflows/search_attributes.py``) with it; False leaves the namespace without
    them, as a cluster nobody set up for them. ``analysis`` adds the metric analysis to the
    config: the new color's 5xx share through Prometheus, which needs traffic to pass (no
    data is never a pass), so only stacks that bring load of their own ask for it.
    ``notifications``, a running receiver, adds notify tables to the config
    (local/notify_receiver.py) and gives the worker the variables holding the receiver's URLs.
    """
    if not regions:
        raise ValueError("local_stack needs at least one region")
    with ExitStack() as stack:
        aws = stack.enter_context(moto_server())
        say(f"moto (AWS) at {aws['AWS_ENDPOINT_URL']}")
        # This process creates the resources and reads the state with boto3: point it at moto.
        stack.enter_context(environ(aws))

        ui_port = ui_port if ui else None
        if db_file is not None:
            # moto's AWS starts empty every run: old histories would point at resources gone.
            db_file.unlink(missing_ok=True)
        address = stack.enter_context(
            temporal_dev_server(
                temporal_port,
                ui_port,
                db_file,
                search_attributes=REGISTRATIONS if search_attributes else None,
                dynamic_config=dynamic_config,
            )
        )
        ui_url = f"http://127.0.0.1:{ui_port}" if ui_port is not None else None
        say(f"Temporal dev server at {address}" + (f", Web UI at {ui_url}" if ui_url else ""))

        # The colors' URLs are the data plane's gateway: chosen before the resources name them.
        gateway_port, prometheus_port = free_port(), free_port()
        regional: dict[str, DemoResources] = {}
        for region in regions:
            # Region names in the lines only where there are several.
            where = f"{region}: " if len(regions) > 1 else ""
            regional[region] = resources = create_demo_resources(
                region,
                blue_url=color_url(gateway_url(gateway_port), region, "blue"),
                green_url=color_url(gateway_url(gateway_port), region, "green"),
                service=service,
                environment=environment,
            )
            say(
                f"{where}AWS resources in moto: clusters {', '.join(resources.clusters.values())},"
                f" an ALB, SSM {resources.ssm_prefix}"
            )
        first, *others = regional.values()
        prometheus_url = f"http://127.0.0.1:{prometheus_port}" if analysis else None
        notify = notify_tables(environment, ui_url) if notifications else ""
        write_demo_config(config_path, first, *others, prometheus_url=prometheus_url, notify=notify)
        say(f"config in {_shown(config_path)}")

        plane = stack.enter_context(
            data_plane(
                config_path,
                environment,
                list(regions),
                aws,
                gateway_port=gateway_port,
                prometheus_port=prometheus_port,
            )
        )
        for region, url in plane.players.items():
            where = f"{region}: " if len(regions) > 1 else ""
            say(
                f"{where}blue runs {first.desired_count} game-server tasks of version"
                f" {INITIAL_VERSION}; players reach them through HAProxy at {url}"
            )
            if players:
                stack.enter_context(load_in_background(seated(url, players, game_seconds)))
                say(f"{where}{players} players connected")
        say(f"HAProxy stats at {plane.stats} (log: {_shown(plane.log)})")

        env = {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default", **aws}
        process = None
        if start_worker:
            # The notifications' URLs are secrets the worker alone holds: not client.py.
            secrets = worker_env(notifications) if notifications else {}
            process = stack.enter_context(worker(env | secrets, args=worker_args))
            say(f"worker polling (log: {_shown(worker_log(address))})")
            if notifications:
                say(f"notifications to a local receiver on port {notifications.port}")
        try:
            yield LocalStack(
                env=env,
                config_path=config_path,
                environment=environment,
                temporal_address=address,
                ui_url=ui_url,
                resources=first,
                worker=process,
                regional=regional,
                data_plane=plane,
                notifications=notifications,
            )
        finally:
            say("stopping everything")


def seated(url: str, players: int, game_seconds: float) -> LoadSettings:
    """``players`` playing games of ``game_seconds`` through HAProxy at ``url`` for as long as
    the stack runs (an hour at most). Told to reconnect, each finishes its game, closes and
    connects again, landing wherever HAProxy sends new sessions."""
    return LoadSettings(url=url, players=players, game_seconds=game_seconds, seconds=3600)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, as Ctrl-C does, so that ``local_stack`` cleans up
    (by default SIGTERM ends Python at once, leaving its children running)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def exit_code(run: Callable[[], int], say: Callable[[str], object], interrupted: int = 130) -> int:
    """``run()``'s exit code, SIGTERM taken as Ctrl-C (``interrupt_on_sigterm``): ``interrupted``
    when interrupted (130, as shells report Ctrl-C; 0 for ``make dev``, which runs until then),
    1 after saying why when it failed (RuntimeError, TimeoutError, OSError); ``local_stack`` has
    stopped everything by then."""
    interrupt_on_sigterm()
    try:
        return run()
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return interrupted
    except (RuntimeError, TimeoutError, OSError) as err:
        say(f"FAILED: {err}")
        return 1


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it is inside it: shorter to read."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
