"""Secret masking: what counts as a secret, and that its value never survives masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agenthq.executors.base import no_mask
from agenthq.executors.masking import build_masker, looks_secret, mask_structure


def test_every_occurrence_is_masked() -> None:
    mask = build_masker(["hunter2-hunter2"])
    assert mask("a hunter2-hunter2 b hunter2-hunter2") == "a *** b ***"


def test_longest_secret_wins_when_one_contains_another() -> None:
    mask = build_masker(["abcd", "abcdefgh"])
    assert mask("x abcdefgh y abcd") == "x *** y ***"


def test_regex_characters_are_literal() -> None:
    mask = build_masker(["a.b*c+(d)"])
    assert mask("a.b*c+(d) axbbc+d") == "*** axbbc+d"


def test_nothing_to_mask_gives_the_identity_itself() -> None:
    assert build_masker([]) is no_mask
    assert build_masker(["", "abc", "no"]) is no_mask  # too short to mask sensibly


def test_short_values_are_ignored_but_others_still_masked() -> None:
    mask = build_masker(["1", "yes", "longer-secret"])
    assert mask("1 yes longer-secret") == "1 yes ***"


def test_each_line_of_a_multiline_secret_is_masked_on_its_own() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END PRIVATE KEY-----"
    mask = build_masker([key])
    assert mask(key) == "***"
    assert mask("line: AQEFAASCBKcwggSjAgEAAoIB") == "line: ***"


@given(
    secret=st.text(alphabet="abcdefXYZ0123-_", min_size=4, max_size=20),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_secret_never_survives(secret: str, before: str, after: str) -> None:
    masked = build_masker([secret])(before.replace("*", "") + secret + after.replace("*", ""))
    assert secret not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "NPM_TOKENS",
        "PGPASSWORD",
        "DB_PASSWD",
        "AWS_SECRET_ACCESS_KEY",
        "CLIENT_SECRET",
        "MY_API_KEY",
        "OPENAI_APIKEY",
        "SSH_PRIVATE_KEY",
        "GOOGLE_CREDENTIALS",
        "BASIC_AUTH",
        "proxy_auth",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name, "some-value")


@pytest.mark.parametrize(
    "name", ["AUTHOR", "GIT_AUTHOR_NAME", "TOKENIZERS_PARALLELISM", "SECRETARY", "PATH", "HOME"]
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret(name, "plain value")


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2" * 9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "xoxb-123456789012-abcdefghijkl",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----",
        "Bearer ghp_" + "Zz9" * 12,
        "postgresql://app:s3cret@db.internal:5432/app",
    ],
)
def test_credential_shaped_values(value: str) -> None:
    assert looks_secret("SETTING", value)


@pytest.mark.parametrize(
    "value", ["hello", "/usr/local/bin", "https://example.com/a:b", "sk-short", "1"]
)
def test_ordinary_values(value: str) -> None:
    assert not looks_secret("SETTING", value)


def test_mask_structure_masks_nested_strings_and_keys() -> None:
    mask = build_masker(["tok-12345"])
    value = {
        "a": "x tok-12345",
        "tok-12345": 1,
        "nested": [{"b": "tok-12345"}, ("tok-12345", 2.5)],
        "n": None,
        "flag": True,
    }
    assert mask_structure(value, mask) == {
        "a": "x ***",
        "***": 1,
        "nested": [{"b": "***"}, ("***", 2.5)],
        "n": None,
        "flag": True,
    }
    assert value["a"] == "x tok-12345"  # the input is left alone


def test_mask_structure_without_secrets_returns_the_same_object() -> None:
    value = {"a": ["b"]}
    assert mask_structure(value, no_mask) is value
