"""The server's guard: the API token, the dashboard cookie, loopback addresses.

The token is created at first start in the agenthq home (`token`, mode 0600) and compared in
constant time. Approval links are signed and verified in engine/links.py.
"""

from __future__ import annotations

import hmac

from agenthq.engine.links import (
    LINK_KEY_FILE,
    load_or_create_secret,
    sign_link,
    verify_link,
)

__all__ = [
    "COOKIE",
    "LINK_KEY_FILE",
    "TOKEN_FILE",
    "is_loopback",
    "load_or_create_secret",
    "same_secret",
    "sign_link",
    "verify_link",
]

TOKEN_FILE = "token"  # noqa: S105 - a file name, not a secret
COOKIE = "agenthq_token"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
