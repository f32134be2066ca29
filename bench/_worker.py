"""``python -m bench._worker``: ``worker.py`` itself, with the benchmark's trivial workflow added.

``bench/overhead.py`` runs a deployment and the trivial workflow on this one worker, so both
meet the same process, thread pool, slots and task queue: only the registrations differ from
the product's worker.
"""

import worker
from activities import ALL_ACTIVITIES
from bench._trivial import TrivialWorkflow, do_nothing
from runtime.process_exit import exit_now
from workflows import ALL_WORKFLOWS

if __name__ == "__main__":
    exit_now(worker.main([*ALL_WORKFLOWS, TrivialWorkflow], [*ALL_ACTIVITIES, do_nothing]))
