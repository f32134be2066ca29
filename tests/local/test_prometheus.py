"""Prometheus scraping the local HAProxy's exporter: Debian's prometheus, for real."""

import json
from collections.abc import Callable, Iterator

import pytest

from local.data_plane.haproxy import Haproxy, backend_name
from local.data_plane.prometheus import (
    Prometheus,
    Sample,
    color_selector,
    prometheus_config,
    prometheus_server,
    query,
)
from local.processes import listening, wait_until
from tests.activities.aws_resources import REGION
from tests.local.data_plane import Backend, split

SCRAPED_BOUND = 15
"""Seconds for a count to show in Prometheus: a scrape a second, on a shared machine."""


def test_the_config_scrapes_haproxy_every_second_and_nothing_else() -> None:
    config = json.loads(prometheus_config("http://127.0.0.1:8404/metrics"))

    assert config["global"]["scrape_interval"] == "1s"
    assert config["global"]["scrape_timeout"] == "1s"
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8404"]}]
    assert set(config) == {"global", "scrape_configs"}  # no remote_write, remote_read, alerting
    with pytest.raises(ValueError, match="HOST:PORT"):
        prometheus_config("127.0.0.1:8404/metrics")


@pytest.fixture
def prometheus(haproxy: Haproxy) -> Iterator[Prometheus]:
    with prometheus_server(haproxy.metrics_url) as server:
        yield server


def color_servers(
    haproxy: Haproxy, backends: Callable[[str], Backend]
) -> dict[str, tuple[str, Backend]]:
    """A blue and a green server in the region's backend, weighing the same: color → (its
    server's name, its backend)."""
    servers: dict[str, tuple[str, Backend]] = {}
    for number, color in enumerate(("blue", "green"), start=1):
        backend = backends(color)
        name = f"{color}-{backend.port}-{number}"
        haproxy.api.add_server(backend_name(REGION), name, backend.address, backend.port, 128)
        servers[color] = (name, backend)
    return servers


def scraped(
    prometheus: Prometheus, promql: str, wanted: Callable[[list[Sample]], bool]
) -> list[Sample]:
    """The answer to ``promql`` once ``wanted`` holds for it (scrapes come every second)."""
    answers: list[list[Sample]] = []

    def holds() -> bool:
        answers.append(query(prometheus.url, promql))
        return wanted(answers[-1])

    wait_until(holds, SCRAPED_BOUND, f"Prometheus answering {promql} as wanted")
    return answers[-1]


def test_prometheus_scrapes_haproxy_per_server(
    haproxy: Haproxy, backends: Callable[[str], Backend], prometheus: Prometheus
) -> None:
    servers = color_servers(haproxy, backends)
    answered = split(haproxy, 20)
    assert answered == {"blue": 10, "green": 10}  # round robin over equal weights
    assert split(haproxy, 4, "/fail") == {"HTTP 500": 4}

    promql = f"haproxy_server_http_responses_total{{{color_selector(REGION, 'green')}}}"
    green = scraped(
        prometheus,
        promql,
        lambda samples: {s.metric["code"]: s.number for s in samples}.get("2xx") == 10,
    )

    assert {s.metric["server"] for s in green} == {servers["green"][0]}
    assert {s.metric["proxy"] for s in green} == {backend_name(REGION)}
    by_code = {s.metric["code"]: s.number for s in green}
    assert by_code["2xx"] == 10
    assert by_code["5xx"] == 2  # half of the 4 failures: round robin again
    sessions = query(
        prometheus.url, f"haproxy_server_sessions_total{{{color_selector(REGION, 'blue')}}}"
    )
    assert [(s.metric["server"], s.number) for s in sessions] == [(servers["blue"][0], 12)]


def test_a_rate_over_a_color_answers_and_a_bad_query_is_refused(
    haproxy: Haproxy, backends: Callable[[str], Backend], prometheus: Prometheus
) -> None:
    color_servers(haproxy, backends)
    selector = f'{color_selector(REGION, "green")},code="5xx"'
    promql = f"sum(rate(haproxy_server_http_responses_total{{{selector}}}[10s]))"

    def sending_errors(samples: list[Sample]) -> bool:
        split(haproxy, 10, "/fail")  # while Prometheus takes the samples a rate needs
        return bool(samples) and samples[0].number > 0

    [rate] = scraped(prometheus, promql, sending_errors)
    assert rate.metric == {}  # summed over the color's servers

    with pytest.raises(RuntimeError, match="Prometheus refused"):
        query(prometheus.url, "sum(rate(haproxy_server_sessions_total[10s])")


def test_prometheus_finds_haproxy_up_and_goes_with_its_data(haproxy: Haproxy) -> None:
    with prometheus_server(haproxy.metrics_url) as server:
        [up] = scraped(server, "up", lambda samples: [s.number for s in samples] == [1])
        assert up.metric["job"] == "haproxy"
        assert up.metric["instance"] == f"{haproxy.host}:{haproxy.stats_port}"
        assert (server.data_dir / "prometheus.yml").exists()
    assert not listening(server.port)
    assert not server.data_dir.exists()  # the next run starts with no history
