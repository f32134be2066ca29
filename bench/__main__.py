"""``python -m bench [ARGS]``: run every benchmark in this package, in name order, with ARGS.

Exits with the first non-zero exit code, after running them all.
"""

import importlib
import pkgutil
import sys

import bench
from bench import _harness


def main(argv: list[str]) -> int:
    """Run each benchmark's ``BENCHMARK`` with ``argv``; the first failure's exit code, else 0."""
    failed = 0
    # The modules of this package but the helpers (and this one), whose names start with "_".
    for name in sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name[0] != "_"):
        print(f"== python -m bench.{name} {' '.join(argv)}".rstrip(), file=sys.stderr, flush=True)
        code = _harness.main(importlib.import_module(f"bench.{name}").BENCHMARK, argv)
        failed = failed or code
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
