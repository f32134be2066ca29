"""The I/O edge of ``client.py``: arguments, starting and following deployments, output."""
