"""What ``client.py`` and ``worker.py`` both run on: the Temporal connection (``connection.py``),
OpenTelemetry tracing (``tracing.py``) and a clean, fast process exit (``process_exit.py``)."""
