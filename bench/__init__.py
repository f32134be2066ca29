"""Benchmarks on the local environment: ``make bench`` (``python -m bench``) runs each of them.

A benchmark is a module of this package with ``main(argv: list[str] | None) -> int``; modules
whose names start with an underscore are helpers.
"""
