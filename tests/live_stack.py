"""The local environment as a test module starts it: free ports, no Web UI, and a deploy.toml
of its own (not the demo's, which a ``make demo`` or another test may be writing)."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.processes import ROOT, free_port
from local.stack import LocalStack, local_stack


@contextmanager
def quiet_stack(directory: Path, players: int = 0, **options: Any) -> Iterator[LocalStack]:
    """``local_stack`` with its config in ``directory`` and ``players`` of its own (none unless
    told: most tests bring their load); ``options`` go to ``local_stack``."""
    with local_stack(
        ui=False,
        temporal_port=free_port(),
        ui_port=None,
        players=players,
        config_path=directory / "deploy.toml",
        **options,
    ) as stack:
        yield stack


def client_output(
    stack: LocalStack, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``client.py ARGS`` against ``stack`` (``env`` on top of its environment) to its end,
    its output captured."""
    return subprocess.run(
        stack.client_command(*args),
        cwd=ROOT,
        env=stack.process_env() | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
