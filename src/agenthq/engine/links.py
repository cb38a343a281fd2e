"""Secrets in the agenthq home, and signed approval links.

A secret file is created at first use with mode 0600 and refused when others can read it.
Approval links are `<approval id>.<expiry>.<HMAC-SHA256>`: they authorise exactly one
decision on one approval until they expire, and an approval can be decided only once, so a
link is single-use. `agenthq approval-link` signs them; `agenthq serve` verifies them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from agenthq.errors import ConfigError

LINK_KEY_FILE = "link-key"


def load_or_create_secret(home: Path, name: str) -> str:
    """Read `home/name`, creating it (0600, 32 random bytes) when missing. A secret file that
    others can read is refused: it would no longer be a secret."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} can be read by other users (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}` or delete it to get a new one"
        )
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 16:
        raise ConfigError(f"{path} is too short to be a secret; delete it to get a new one")
    return value


def signed_link(home: Path, approval_id: int, expires_at: float) -> str:
    """The token part of an approval link, signed with the home's link key."""
    return sign_link(load_or_create_secret(home, LINK_KEY_FILE), approval_id, int(expires_at))


def sign_link(key: str, approval_id: int, expires_at: int) -> str:
    body = f"{approval_id}.{expires_at}"
    return f"{body}.{_mac(key, body)}"


def verify_link(key: str, token: str, now: float) -> int | None:
    """The approval id a link authorises, or None when forged, malformed or expired."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(key, body), parts[2]):
        return None
    if int(parts[1]) < now:
        return None
    return int(parts[0])


def _mac(key: str, body: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
