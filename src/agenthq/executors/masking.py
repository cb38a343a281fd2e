"""Keeping secret values out of logs, outputs, errors and the store.

Masking is by value, not by name: whatever a step prints, a secret's value becomes `***`.
Which values are secret comes from the plan's `secrets:` list plus environment variables that
look like credentials, because people put tokens in `env:` without declaring them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from agenthq.executors.base import Masker, no_mask

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values ("1", "yes") would blank out ordinary text everywhere

# A credential-ish word at the end of the name or before a separator, so `GITHUB_TOKEN` and
# `PGPASSWORD` count but `AUTHOR` and `TOKENIZERS_PARALLELISM` do not.
_SECRET_NAME = re.compile(
    r"(TOKENS?|SECRETS?|PASSWORDS?|PASSWD|API_?KEYS?|PRIVATE_?KEYS?|CREDENTIALS?|AUTH)"
    r"(?![A-Z0-9])"
)
_SECRET_VALUE = re.compile(
    r"(?:A[KS]IA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|sk-[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic and similar API keys
    r"|[sr]k_live_[A-Za-z0-9]{16,}"  # Stripe
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"
    r"|[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@)"  # URL with a password in it
)


def build_masker(secret_values: Iterable[str]) -> Masker:
    """One compiled pattern for all secrets, longest first so a secret that contains another
    is masked whole. Returns `no_mask` itself when there is nothing to hide, which lets
    executors take their fast path (`masker is no_mask`)."""
    values: set[str] = set()
    for value in secret_values:
        if not value:
            continue
        values.add(value)
        if "\n" in value or "\r" in value:
            # Logs are masked a line at a time: each line of a multi-line secret (a PEM key)
            # must be recognisable on its own.
            values.update(line.strip() for line in value.splitlines())
    values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
    if not values:
        return no_mask
    pattern = re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))

    def mask(text: str) -> str:
        return pattern.sub(MASK, text) if text else text

    return mask


def looks_secret(name: str, value: str) -> bool:
    """Whether an environment variable probably holds a credential, by its name or its shape."""
    if _SECRET_NAME.search(name.upper()):
        return True
    return bool(_SECRET_VALUE.search(value))


def mask_structure(value: Any, masker: Masker) -> Any:
    """Mask every string in a JSON-like structure, keys included (a key can carry a secret)."""
    if masker is no_mask:
        return value
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, Mapping):
        return {
            (masker(k) if isinstance(k, str) else k): mask_structure(v, masker)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_structure(item, masker) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_structure(item, masker) for item in value)
    return value


def environment_masker(environ: Mapping[str, str]) -> Masker:
    """Mask every value of `environ` whose name or shape says it is a secret (for text that
    leaves the process outside any run: alert notifications)."""
    return build_masker(v for k, v in environ.items() if looks_secret(k, v))
