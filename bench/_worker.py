"""``python -m bench._worker``: ``worker.py`` itself, with the benchmark's trivial workflow added.

``bench/overhead.py`` runs a deployment and the trivial workflow on this one worker, so both
meet the same process, thread pool, slots and task queue (eager activity dispatch included).
It rebinds ``worker.py``'s own names instead of building a ``Worker`` here, so that the worker
measured is configured exactly as the product's: only the registrations differ, and the
product's ``ALL_WORKFLOWS`` list itself is left untouched.
"""

import worker
from activities import ALL_ACTIVITIES
from bench._trivial import TrivialWorkflow, do_nothing
from runtime.process_exit import exit_now
from workflows import ALL_WORKFLOWS


def main() -> int:
    """Run ``worker.main()`` with ``TrivialWorkflow`` and ``do_nothing`` registered as well."""
    # New lists under worker.py's names: run() reads them when it builds its Worker.
    vars(worker).update(
        ALL_WORKFLOWS=[*ALL_WORKFLOWS, TrivialWorkflow],
        ALL_ACTIVITIES=[*ALL_ACTIVITIES, do_nothing],
    )
    return worker.main()


if __name__ == "__main__":
    exit_now(main())
