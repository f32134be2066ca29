"""``python -m local.data_plane``: what runs behind moto's AWS in the local environment.

    python -m local.data_plane --config deploy.toml --environment prod \\
        --frontend us-west-2=8000 [--frontend us-east-1=8001 …] \\
        --gateway-port 8090 --runtime-api-port 9999 --stats-port 8404 --prometheus-port 9090 \\
        [--host 127.0.0.1]

For every region of the environment in deploy.toml, until SIGTERM or SIGINT:

- the ECS stand-in (``ecs_tasks.py``) runs each color's game-server processes as moto's ECS
  service says, registering them in the color's target group once healthy;
- HAProxy (``haproxy.py``) serves players at the region's ``--frontend`` port, its servers and
  weights following the targets and the router in moto (``load_balancer.py``);
- the gateway (``gateway.py``) answers for each color's tasks at
  ``http://HOST:GATEWAY/<region>/<color>``, the colors' ``url`` in deploy.toml;
- Prometheus (``prometheus.py``) scrapes HAProxy's exporter every second, its API at
  ``http://HOST:PROMETHEUS``;
- HAProxy's counters become the ALB's CloudWatch metrics in moto (``cloudwatch_metrics.py``),
  and the alarms the bake watches are set to ALARM or OK from them (``alarms.py``), as
  CloudWatch would.

Nothing here is called by the deployment: it reads moto, as AWS's data plane follows its
control plane. On the way out every task, HAProxy and Prometheus stop. Exit 2 with one line for bad input.
"""

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from local.data_plane.alarms import EVALUATE_INTERVAL, AlarmEvaluator
from local.data_plane.cloudwatch_metrics import PUBLISH_INTERVAL, AlbMetricsPublisher
from local.data_plane.ecs_tasks import ColorTasks
from local.data_plane.gateway import serving_gateway
from local.data_plane.haproxy import Haproxy, haproxy_server
from local.data_plane.load_balancer import LoadBalancerFollower
from local.data_plane.looping import keep_running
from local.data_plane.prometheus import prometheus_server
from local.processes import STATE_DIR
from models.colors import COLORS, Color
from models.config import EnvironmentConfig, load_config
from models.errors import one_line

TASKS_INTERVAL = 0.25
"""Seconds between two reads of moto's ECS services (and health checks of starting tasks)."""
WEIGHTS_INTERVAL = 0.05
"""Seconds between two reads of the router's weights: HAProxy follows a switch within this
and a read's time."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.data_plane", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, required=True, help="the deploy.toml to follow")
    parser.add_argument("--environment", required=True, help="its environment to follow")
    parser.add_argument(
        "--frontend",
        action="append",
        default=[],
        metavar="REGION=PORT",
        help="where players reach REGION's HAProxy frontend; once per region",
    )
    parser.add_argument("--gateway-port", type=int, required=True)
    parser.add_argument("--runtime-api-port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument(
        "--prometheus-port", type=int, required=True, help="Prometheus's API and web UI"
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    return parser.parse_args(argv)


def frontends(listed: list[str], regions: list[str]) -> dict[str, int]:
    """``["us-west-2=8000"]`` → ``{"us-west-2": 8000}``, one per region; ValueError naming
    ``--frontend`` and what is wrong."""
    ports: dict[str, int] = {}
    for item in listed:
        region, _, port = item.partition("=")
        if region not in regions or not port.isdigit():
            raise ValueError(
                f"--frontend {item!r}: expected REGION=PORT with REGION one of {', '.join(regions)}"
            )
        ports[region] = int(port)
    missing = [region for region in regions if region not in ports]
    if missing:
        raise ValueError(f"--frontend is missing for {', '.join(missing)}")
    return ports


def main(argv: list[str] | None = None) -> int:
    """Run the data plane until SIGTERM or SIGINT; 0 then, 2 for bad input."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    try:
        environment = load_config(args.config).environment(args.environment)
        regions = environment.all_regions()
        ports = frontends(args.frontend, regions)
    except (OSError, ValueError, KeyError) as err:
        detail = one_line(err) if isinstance(err, ValidationError) else str(err)
        print(f"local.data_plane: {detail}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    with ExitStack() as stack:
        haproxy = stack.enter_context(
            haproxy_server(
                ports,
                runtime_port=args.runtime_api_port,
                stats_port=args.stats_port,
                host=args.host,
            )
        )
        prometheus = stack.enter_context(
            prometheus_server(haproxy.metrics_url, port=args.prometheus_port, host=args.host)
        )
        tasks = {
            region: stack.enter_context(region_tasks(environment.for_region(region)))
            for region in regions
        }

        def urls_of(region: str, color: str) -> list[str] | None:
            found = tasks.get(region, {}).get(color)  # type: ignore[call-overload]
            return None if found is None else found.serving_urls

        stack.enter_context(serving_gateway(args.host, args.gateway_port, urls_of))
        loops = [
            loop
            for region in regions
            for loop in region_loops(environment, region, list(tasks[region].values()), haproxy)
        ]
        threads = [
            threading.Thread(target=keep_running, args=(step, stop, interval, name))
            for step, interval, name in loops
        ]
        for thread in threads:
            thread.start()
        logging.info(
            "data plane up: players at %s; gateway at http://%s:%d; Prometheus at %s",
            ", ".join(f"{r} {haproxy.player_url(r)}" for r in regions),
            args.host,
            args.gateway_port,
            prometheus.url,
        )
        stop.wait()
        for thread in threads:
            thread.join()
    logging.info("data plane stopped")
    return 0


@contextmanager
def region_tasks(environment: EnvironmentConfig) -> Iterator[dict[Color, ColorTasks]]:
    """The ECS stand-in of both colors of one region; every task stopped on the way out."""
    by_color = {
        color: ColorTasks(
            region=environment.region,
            color=color,
            cluster=environment.color(color).cluster,
            service=environment.color(color).service,
            target_group_arn=environment.color(color).target_group_arn,
            container_name=environment.container_name,
            log_dir=STATE_DIR / "logs",
            say=logging.info,
        )
        for color in COLORS
    }
    for tasks in by_color.values():
        tasks.forget_targets()
    try:
        yield by_color
    finally:
        for tasks in by_color.values():
            tasks.stop_all()


Loop = tuple[Callable[[], object], float, str]
"""A step the data plane repeats, every so many seconds, and its name in the log."""


def region_loops(
    environment: EnvironmentConfig, region: str, colors: list[ColorTasks], haproxy: Haproxy
) -> list[Loop]:
    """What runs for one region: its tasks following ECS, HAProxy following the router, the
    ALB's metrics published, and the bake's alarms evaluated (the last two where the router is
    an ALB and alarms are set)."""
    follower = LoadBalancerFollower.for_environment(environment, region, haproxy.api)
    loops: list[Loop] = [
        (partial(sync_all, colors), TASKS_INTERVAL, f"tasks-{region}"),
        (follower.sync, WEIGHTS_INTERVAL, follower.backend),
    ]
    if publisher := AlbMetricsPublisher.for_environment(environment, region, haproxy.api):
        loops.append((publisher.publish, PUBLISH_INTERVAL, f"cloudwatch-metrics-{region}"))
    if evaluator := AlarmEvaluator.for_environment(environment, region):
        loops.append((evaluator.evaluate, EVALUATE_INTERVAL, f"alarms-{region}"))
    return loops


def sync_all(colors: list[ColorTasks]) -> None:
    """One reconcile of each color's tasks."""
    for tasks in colors:
        tasks.sync()


if __name__ == "__main__":
    sys.exit(main())
