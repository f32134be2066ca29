"""``python -m bench [ARGS]``: run every benchmark in this package, in name order, with ARGS.

Exits with the first non-zero exit code, after running them all.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmarks() -> list[str]:
    """The modules of this package that are benchmarks (not helpers, not this one)."""
    here = Path(__file__).resolve().parent
    return sorted(
        f"{__package__}.{module.name}"
        for module in pkgutil.iter_modules([str(here)])
        if not module.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    """Run each benchmark's ``main(argv)``; the first failure's exit code, else 0."""
    failed = 0
    for name in benchmarks():
        print(f"== python -m {name} {' '.join(argv)}".rstrip(), file=sys.stderr, flush=True)
        code = int(importlib.import_module(name).main(argv))
        failed = failed or code
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
