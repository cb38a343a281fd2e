"""The `agenthq` command line: Typer commands over the Runner and the store."""
