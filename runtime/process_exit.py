"""Ending a short-lived process that holds a Temporal client."""

import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush and end the process without interpreter teardown.

    Temporal's Rust bridge keeps threads that can abort CPython's finalization of a short-lived
    client process ("Fatal Python error: PyGILState_Release", temporalio/sdk-python#300), which
    would spoil the one-line errors and the exit codes CI relies on.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
