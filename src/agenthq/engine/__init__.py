"""The engine: the scheduler tick, limits, retries, recovery after a crash, and the Runner
that the CLI and the server use to start, resume, cancel and retry runs."""
