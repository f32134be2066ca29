"""Benchmarks on the local environment: ``make bench`` (``python -m bench``) runs each of them.

A benchmark is a module of this package with a ``BENCHMARK`` (``bench/_harness.py`` runs it;
``python -m bench.NAME`` runs one); modules whose names start with an underscore are helpers.
"""
