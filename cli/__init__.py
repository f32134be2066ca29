"""The I/O edge shared by ``client.py`` and ``worker.py``: arguments, connection, output."""
