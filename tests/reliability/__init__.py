"""Reliability: faults injected between the worker and AWS, Temporal and the worker."""
