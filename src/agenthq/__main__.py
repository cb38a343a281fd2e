"""`python -m agenthq` is the same as the `agenthq` command."""

from agenthq.cli.main import command

command()
