"""The secrets scanner: vendor formats, assignments, key blocks, look-alikes, files and speed.

Every credential here is built at test time from parts and random characters, so the repository
holds no literal that looks like a live secret (push-protection scanners would object), and no
assertion prints a value: leaks are checked with `_leaks`, which returns a plain bool.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import string
import time
from pathlib import Path

import pytest

from agenthq.gates import secrets_scan
from agenthq.gates.secrets_scan import (
    KIND_ENTROPY,
    KIND_KEYWORD,
    MAX_FILE_BYTES,
    Finding,
    scan_path,
    scan_text,
)

UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
# Random values must not spell a placeholder by chance ("test", "xxx" ...), or the test flakes.
_MADE_UP = ("test", "fake", "xxx", "foo", "bar", "demo", "mock", "here", "dummy", "sample")


def rand(length: int, alphabet: str = ALNUM, *, seed: int = 0) -> str:
    rng = random.Random(f"{seed}:{length}:{alphabet}")
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(length))
        if not any(word in value.lower() for word in _MADE_UP):
            return value


def _leaks(value: str, *texts: object) -> bool:
    return any(value in str(text) for text in texts)


def kinds(text: str) -> list[tuple[int, str]]:
    return [(f.line, f.kind) for f in scan_text(text)]


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_jwt() -> str:
    header = b64url({"alg": "HS256", "typ": "JWT"})
    payload = b64url({"sub": "u-" + rand(8, seed=1), "iat": 1_700_000_000})
    return f"{header}.{payload}.{rand(43, ALNUM + '-_', seed=2)}"


def key_block(kind: str = "RSA PRIVATE KEY", lines: int = 8) -> str:
    body = "\n".join(rand(64, ALNUM + "+/", seed=n) for n in range(lines))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


# ---- vendor formats -------------------------------------------------------------------------

VENDOR_CASES = {
    "aws": ("AWS Access Key", "aws_access_key_id = " + "AK" + "IA" + rand(16, UPPER_DIGITS)),
    "github": ("GitHub Token", "GITHUB_TOKEN=" + "gh" + "p_" + rand(36)),
    "github fine-grained": ("GitHub Token", "github" + "_pat_" + rand(22) + "_" + rand(59)),
    "slack": (
        "Slack Token",
        "SLACK="
        + "xo"
        + "xb-"
        + rand(11, string.digits)
        + "-"
        + rand(13, string.digits)
        + "-"
        + rand(24),
    ),
    "slack webhook": (
        "Slack Webhook",
        "https://hooks.slack.com/services/T"
        + rand(8, UPPER_DIGITS)
        + "/B"
        + rand(8, UPPER_DIGITS)
        + "/"
        + rand(24),
    ),
    "stripe": ("Stripe Key", "stripe.api_key = '" + "sk" + "_live_" + rand(24) + "'"),
    "openai": ("OpenAI API Key", "OPENAI=" + "sk-" + "proj-" + rand(100, ALNUM + "-_")),
    "anthropic": ("Anthropic API Key", "k = '" + "sk-" + "ant-api03-" + rand(93) + "AA'"),
    "google": ("Google API Key", "const k = '" + "AI" + "za" + rand(35, ALNUM + "-_") + "';"),
    "gitlab": ("GitLab Token", "GITLAB=" + "gl" + "pat-" + rand(20)),
    "npm": ("npm Token", "//registry.npmjs.org/:_authToken=" + "np" + "m_" + rand(36)),
    "jwt": ("JSON Web Token", "session=" + make_jwt()),
    "url password": ("Password in URL", "postgres://app:" + rand(14) + "@db.internal:5432/app"),
    "hugging face": ("Hugging Face Token", "HF=" + "h" + "f_" + rand(34, string.ascii_letters)),
}


@pytest.mark.parametrize("case", VENDOR_CASES, ids=list(VENDOR_CASES))
def test_vendor_formats_are_named(case: str) -> None:
    kind, line = VENDOR_CASES[case]
    findings = scan_text(line, filename="app.env")
    assert findings == [Finding("app.env", 1, kind)]


def test_finding_has_place_and_kind_but_no_value() -> None:
    token = "gh" + "p_" + rand(36, seed=7)
    findings = scan_text(f"first line\nexport GITHUB_TOKEN={token}\n", filename="run.sh")
    assert [field.name for field in dataclasses.fields(Finding)] == ["file", "line", "kind"]
    assert findings == [Finding("run.sh", 2, "GitHub Token")]
    assert str(findings[0]) == "run.sh:2: GitHub Token"
    assert findings[0].as_dict() == {"file": "run.sh", "line": 2, "kind": "GitHub Token"}
    leaked = _leaks(token, findings, [f.as_dict() for f in findings])
    assert not leaked
    with pytest.raises(dataclasses.FrozenInstanceError):
        findings[0].line = 3  # type: ignore[misc]


def test_each_line_reported_once_with_its_most_specific_kind() -> None:
    aws = "AK" + "IA" + rand(16, UPPER_DIGITS, seed=3)
    text = "\n".join(
        [
            "# settings",
            f'aws_key = "{aws}"',  # a vendor format assigned to a key: one finding, the vendor's
            "name = 'demo'",
            "password: " + rand(10, seed=4) + "!7",
        ]
    )
    assert kinds(text) == [(2, "AWS Access Key"), (4, KIND_KEYWORD)]


# ---- private keys and Kubernetes secrets ----------------------------------------------------


def test_private_key_block_is_reported_at_its_header() -> None:
    text = "intro\n" + key_block() + "\n"
    assert kinds(text) == [(2, "Private Key")]


def test_private_key_inside_a_json_string() -> None:
    block = key_block("PRIVATE KEY").replace("\n", "\\n")
    text = '{\n  "type": "service_account",\n  "private_key": "' + block + '\\n"\n}'
    assert kinds(text) == [(3, "Private Key")]


@pytest.mark.parametrize(
    "body",
    ["...", "anything", "<your key here>", "", "x" * 64 + "\n" + "x" * 64],
    ids=["dots", "word", "placeholder", "empty", "filler"],
)
def test_key_header_without_key_material_is_quiet(body: str) -> None:
    text = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    assert kinds(text) == []


def test_public_key_and_certificate_are_quiet() -> None:
    text = key_block("PUBLIC KEY") + "\n" + key_block("CERTIFICATE")
    assert kinds(text) == []


def secret_manifest(value: str, kind: str = "Secret", key: str = "password") -> str:
    return (
        f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: db\ntype: Opaque\n"
        f"data:\n  username: YWRtaW4=\n  {key}: {value}\n"
    )


def test_kubernetes_secret_data_is_reported() -> None:
    encoded = base64.b64encode(rand(18, seed=5).encode()).decode()
    assert kinds(secret_manifest(encoded)) == [(8, "Kubernetes Secret")]


@pytest.mark.parametrize(
    "manifest",
    [
        secret_manifest(base64.b64encode(b"changeme").decode()),
        secret_manifest("{{ .Values.password }}"),
        secret_manifest(base64.b64encode(b"hello, world").decode(), "ConfigMap", "greeting"),
    ],
    ids=["placeholder", "template", "not-a-secret"],
)
def test_kubernetes_lookalikes_are_quiet(manifest: str) -> None:
    assert kinds(manifest) == []


# ---- assignments ----------------------------------------------------------------------------

SECRET = rand(14, seed=11) + "#9"
ASSIGNMENTS = {
    "yaml": f"database:\n  password: {SECRET}",
    "env": f"DB_PASSWORD={SECRET}",
    "python": f'api_key = "{rand(32, HEX, seed=12)}"',
    "javascript": f'const clientSecret = "{rand(40, ALNUM + "-_", seed=13)}";',
    "json": f'{{"refresh_token": "{rand(48, seed=14)}"}}',
    "bearer header": f'curl -H "Authorization: Bearer {rand(40, HEX, seed=15)}" https://api',
    "api key header": f'curl -H "X-Api-Key: {rand(32, HEX, seed=16)}" https://api',
    "curl user": f"curl -u deploy:{SECRET} https://registry.internal/v2/",
    "cli flag": f"login --password {SECRET}",
    "xml": f'<add key="DbPassword" value="{SECRET}" />',
    "netrc": f"machine registry.internal login bot password {SECRET}",
    "go": f'var apiToken string = "{rand(40, seed=17)}"',
}


@pytest.mark.parametrize("case", ASSIGNMENTS, ids=list(ASSIGNMENTS))
def test_credential_assignments(case: str) -> None:
    text = ASSIGNMENTS[case]
    findings = scan_text(text)
    assert [(f.line, f.kind) for f in findings] == [(text.count("\n") + 1, KIND_KEYWORD)]


def test_quoted_random_string_without_a_name_is_high_entropy() -> None:
    assert kinds(f'call("{rand(44, ALNUM + "+/", seed=21)}")') == [(1, KIND_ENTROPY)]


# ---- look-alikes ----------------------------------------------------------------------------

LOOKALIKES = {
    "aws doc example": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",  # AWS's published examples
    "aws doc secret": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "x token": "GITHUB_TOKEN=" + "gh" + "p_" + "x" * 36,
    "env reference": "password: ${DB_PASSWORD}",
    "shell variable": "export TOKEN=$GITHUB_TOKEN",
    "environ": 'api_key = os.environ["API_KEY"]',
    "call": "token = get_token()",
    "attribute": "password = settings.db_password",
    "changeme": 'password = "changeme"',
    "angle placeholder": "password: <your-password>",
    "your key here": "API_KEY=your_api_key_here",
    "stars": '"password": "********"',
    "template": 'secret: "{{ .Values.secret }}"',
    "same char": 'secret = "' + "a" * 24 + '"',
    "dummy": 'token = "dummy-token-for-unit"',
    "test value": 'api_key = "test_key_' + rand(12, seed=31) + '"',
    "git sha": f'commit = "{rand(40, HEX, seed=32)}"',
    "sha256": f'sha256: "{rand(64, HEX, seed=33)}"',
    "uuid id": 'request_id = "123e4567-e89b-12d3-a456-426614174000"',
    "integrity": '"integrity": "sha512-' + rand(86, ALNUM + "+/", seed=34) + '=="',
    "token url": 'token_url = "https://oauth2.googleapis.com/token"',
    "password length": "password_min_length = 12",
    "public key": f'public_key = "{rand(44, ALNUM, seed=35)}"',
    "ssh public key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand(40, seed=36) + " me@host",
    "url placeholder password": "postgres://user:password@localhost:5432/app",
    "url same password": "postgres://postgres:postgres@localhost:5432/postgres",
    "bearer variable": "Authorization: Bearer $TOKEN",
    "ui label": '"password": "Password"',
    "ui message": "password: 'is required'",
    "tokenizer": 'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")',
    "max tokens": "max_tokens = 4096",
    "regex": "SECRET = r'([a-f0-9]{48}(?![a-f0-9]))'",
    "empty": "PASSWORD=",
    "log line": "2024-05-01T12:00:00Z INFO step=build passed in 1.2s key=cache-hit",
}


@pytest.mark.parametrize("case", LOOKALIKES, ids=list(LOOKALIKES))
def test_lookalikes_are_quiet(case: str) -> None:
    assert kinds(LOOKALIKES[case]) == []


def test_stripe_test_mode_prefix_does_not_count_as_a_placeholder() -> None:
    assert kinds("STRIPE=" + "sk" + "_test_" + rand(40, seed=41)) == [(1, "Stripe Key")]


# ---- files and directories ------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_scan_path_walks_a_tree_and_skips_what_it_should(tmp_path: Path) -> None:
    token = "gh" + "p_" + rand(36, seed=51)
    line = f"TOKEN = '{token}'\n"
    write(tmp_path / "src" / "app.py", "import os\n\n" + line)
    for skipped in (".git/config", ".venv/lib/x.py", "node_modules/m/index.js", ".agenthq/o"):
        write(tmp_path / skipped, line)
    write(tmp_path / "logo.png", b"\x89PNG\x00\x00" + line.encode())
    write(tmp_path / "big.txt", line + "x" * MAX_FILE_BYTES)
    write(tmp_path / "clean.md", "nothing to see\n")

    assert scan_path(tmp_path, root=tmp_path) == [Finding("src/app.py", 3, "GitHub Token")]
    without_root = scan_path(tmp_path / "src")
    assert without_root == [Finding((tmp_path / "src" / "app.py").as_posix(), 3, "GitHub Token")]


def test_scan_path_on_a_single_file(tmp_path: Path) -> None:
    file = write(tmp_path / "conf" / "prod.env", "A=1\nDB_PASSWORD=" + SECRET + "\n")
    assert scan_path(file, root=tmp_path) == [Finding("conf/prod.env", 2, KIND_KEYWORD)]


def test_scan_path_of_a_missing_file_finds_nothing(tmp_path: Path) -> None:
    assert scan_path(tmp_path / "nope.txt") == []


# ---- speed and set-up -----------------------------------------------------------------------


def big_log(size: int) -> str:
    """Build-log lines: timestamps, tracebacks, commit hashes, URLs, test results."""
    rng = random.Random(7)
    lines: list[str] = []
    total = 0
    while total < size:
        n = len(lines)
        lines += [
            f"2024-05-01T12:{n % 60:02d}:00Z INFO agenthq step={n} key=cache-{n} started",
            f'  File "/work/.venv/lib/python3.11/site-packages/pkg/mod.py", line {n}, in run',
            f"commit {''.join(rng.choice(HEX) for _ in range(40))} Merge pull request #{n}",
            f"Downloading https://files.example.org/{''.join(rng.choice(HEX) for _ in range(60))}",
            f"tests/unit/test_x.py::test_case_{n} PASSED [{n % 100:3d}%] password reset ok",
        ]
        total += sum(len(line) + 1 for line in lines[-5:])
    return "\n".join(lines)


def test_a_megabyte_of_log_scans_well_under_a_second() -> None:
    token = "gh" + "p_" + rand(36, seed=61)
    text = big_log(1_000_000) + f"\nleaked {token}\n"
    scan_text("warm up")
    started = time.perf_counter()
    findings = scan_text(text)
    elapsed = time.perf_counter() - started
    assert [f.kind for f in findings] == ["GitHub Token"]
    assert findings[0].line == text.count("\n")
    assert elapsed < 1.0, f"1 MB took {elapsed:.2f}s"


def test_detect_secrets_is_configured_once_and_leaves_global_settings_alone() -> None:
    from detect_secrets.settings import get_settings

    before = json.dumps(get_settings().json(), sort_keys=True)
    assert secrets_scan._engine() is secrets_scan._engine()
    scan_text("password = " + SECRET)
    assert json.dumps(get_settings().json(), sort_keys=True) == before
