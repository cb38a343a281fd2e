"""Entry point: builds the Typer app and maps errors to exit codes in one table.

Exit codes: 0 succeeded, 1 failed, 2 invalid input, 3 stopped waiting for a person,
130 cancelled. No traceback reaches a user for an error we raised on purpose; anything
else is a bug and is shown as one.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

import typer

from agenthq.cli import startup_gc
from agenthq.errors import AgentHQError, InputError, NotFoundError, StateError, StoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_WAITING = 3
EXIT_CANCELLED = 130

# Most specific first: the first matching class decides the exit code.
ERROR_EXIT_CODES: tuple[tuple[type[AgentHQError], int], ...] = (
    (InputError, EXIT_INPUT),
    (NotFoundError, EXIT_INPUT),
    (StateError, EXIT_INPUT),
    (StoreError, EXIT_FAILED),
    (AgentHQError, EXIT_FAILED),
)

app = typer.Typer(
    name="agenthq",
    help="Mission control for autonomous agents: run plans of agent, shell and Python steps durably.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
audit_app = typer.Typer(help="Check the tamper-evident event log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def exit_code_for(error: AgentHQError) -> int:
    for cls, code in ERROR_EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_FAILED


def _register() -> None:
    from agenthq.cli import (
        alerts_cmd,
        approval_cmds,
        automation_cmds,
        db_cmd,
        doctor_cmd,
        inspect_cmds,
        learn_cmds,
        msg_cmd,
        new_cmd,
        risk_cmd,
        run_cmds,
        secrets_cmd,
        serve_cmd,
        worker_cmd,
        worktree_cmds,
    )

    run_cmds.register(app)
    approval_cmds.register(app)
    serve_cmd.register(app)
    risk_cmd.register(app)
    secrets_cmd.register(app)
    inspect_cmds.register(app, audit_app)
    worktree_cmds.register(app)
    msg_cmd.register(app)
    alerts_cmd.register(app)
    new_cmd.register(app)
    doctor_cmd.register(app)
    automation_cmds.register(app)
    db_cmd.register(app)
    learn_cmds.register(app)
    worker_cmd.register(app)


def main(argv: list[str] | None = None) -> int:
    with startup_gc.setting_up():
        _register()
    try:
        result = app(args=argv, standalone_mode=False)
    except AgentHQError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_code_for(error)
    except SystemExit as stop:  # typer.Exit inside commands
        return int(stop.code or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as error:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.exceptions.Exit):
            return error.exit_code
        if isinstance(error, click.ClickException) or (
            hasattr(error, "show") and hasattr(error, "exit_code")  # typer's vendored click
        ):
            error.show()
            return EXIT_INPUT
        if isinstance(error, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            return EXIT_CANCELLED
        raise
    return result if isinstance(result, int) else EXIT_OK


def command() -> NoReturn:
    """The `agenthq` command (and `python -m agenthq`): main(), then exit without tearing the
    interpreter down.

    Freeing every object of a finished run at exit took 85 ms of W1's 0.9 s and 200 ms of
    W3's 2.8 s, and a finished command needs none of it. What a normal exit does that
    matters still happens: with another thread running, the exit is the normal one (which
    waits for it); the exit handlers run (logging's flush, temporary files, a server's
    child processes); stdout and stderr are flushed. In-process callers of main() (tests,
    embedding) are unaffected. For the same reason only this arms `startup_gc`: the collector
    stays off while a command sets up (see cli/startup_gc.py).
    """
    startup_gc.arm()
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
