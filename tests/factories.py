"""Valid configuration and requests for tests, with the parts a test cares about overridable."""

from typing import Any

from models.config import EnvironmentConfig
from models.deployment import DeploymentRequest

ENVIRONMENT: dict[str, Any] = {
    "region": "us-west-2",
    "ssm_prefix": "/game/prod",
    "task_family": "game",
    "container_name": "game",
    "desired_count": 2,
    "blue": {
        "cluster": "game-prod-blue",
        "service": "game",
        "target_group_arn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/blue/1",
        "url": "http://127.0.0.1:18081",
    },
    "green": {
        "cluster": "game-prod-green",
        "service": "game",
        "target_group_arn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/green/2",
        "url": "http://127.0.0.1:18082",
    },
    "router": {
        "kind": "alb",
        "listener_arn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/game/1/2",
    },
    "health": {"timeout": "10m", "poll_interval": "15s"},
    "drain": {"timeout": "2h", "poll_interval": "30s"},
    # No bake unless a test asks for one, so each test sees only the phases it is about.
    "bake": {"duration": "0s"},
    "connections": {
        "url": "{color_url}/connections",
        "version_header": "X-Game-Version",
        "notify_url": "{color_url}/reconnect",
    },
    "integration_checks": [{"name": "health", "url": "{color_url}/health", "body_contains": "ok"}],
}


def environment(**overrides: Any) -> EnvironmentConfig:
    """The test environment, with top-level keys replaced by ``overrides``."""
    return EnvironmentConfig.model_validate(ENVIRONMENT | overrides)


def deployment_request(
    target: EnvironmentConfig | None = None, **overrides: Any
) -> DeploymentRequest:
    """Deploy game version 2 to prod."""
    fields: dict[str, Any] = {
        "service": "game",
        "environment": "prod",
        "version": "2",
        "image": "registry.example.com/game:2",
        "target": target or environment(),
    }
    return DeploymentRequest.model_validate(fields | overrides)
