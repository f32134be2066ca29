"""A small game service to deploy in the local environment: one process per color.

It keeps its connected players in memory, tagged with the client version they connected on,
counts them per version and tells them to reconnect once their game is done — what the
deployment's drain phase talks to. Standard library only. Run ``python -m sample_service --help``.
"""
