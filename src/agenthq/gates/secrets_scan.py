"""Find credentials in text and files, reporting where and what kind, never the value.

The scanner feeds the `secrets` gate (a step's output or changes must not carry a credential)
and `agenthq secrets scan`. It layers four kinds of evidence, from most to least specific:

1. Vendor formats: detect-secrets' regex plugins (AWS, GitHub, Slack, Stripe, JWT ...), run
   in-process and offline, plus a small table of formats those plugins miss (fine-grained GitHub
   tokens, Anthropic/OpenAI project keys, Google API keys, Hugging Face, Vault ...).
2. Assignments: a credential-named key (`password`, `api_key`, `clientSecret`, an
   `Authorization` header, `curl -u user:pass`, `--token X`) given a literal value that looks
   like that kind of credential. detect-secrets' KeywordDetector is not used: it picks its
   regexes by file extension (so logs and stdin only match quoted values) and cannot tell
   `secret_name` or `public_key` from a secret.
3. Random-looking quoted strings (detect-secrets' entropy plugins and heuristic filters), unless
   the context says they are digests, commit ids, signatures or anti-forgery tokens.
4. Whole-document shapes: private key blocks that hold key material, Kubernetes `Secret` data.

Every candidate then passes an allow-list of documentation examples and placeholders
(AKIAIOSFODNN7EXAMPLE, `xxxx`, `<your-token>`, `${VAR}`, `changeme`, one repeated character,
`example`/`dummy`/`fake`/`test` ...), so look-alikes in docs and tests stay quiet.

Speed: each detector has a cheap trigger that runs once over the lower-cased text; its real
regexes only see the lines the trigger hit, so a 1 MB log takes about 0.2 s.
Inline allow-list comments (`pragma: allowlist secret`) are deliberately not honoured: the
gate guards against an agent leaking credentials, and an agent can write comments.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KIND_ENTROPY",
    "KIND_KEYWORD",
    "MAX_FILE_BYTES",
    "SKIP_DIRS",
    "Finding",
    "read_text_file",
    "scan_path",
    "scan_text",
]

MAX_FILE_BYTES = 2 * 1024 * 1024  # larger files are data or build output, not hand-written
SKIP_DIRS = frozenset({".git", ".venv", "node_modules", ".agenthq"})
KIND_KEYWORD = "Secret Keyword"
KIND_ENTROPY = "High Entropy String"
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True, order=True)
class Finding:
    """Where a credential is and what kind it looks like. Deliberately holds no value."""

    file: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}"

    def as_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line, "kind": self.kind}


# ============================================================================================
# Public entry points
# ============================================================================================


def scan_text(text: str, *, filename: str = "<stdin>") -> list[Finding]:
    """Every credential found in `text`: one finding per line and kind, sorted by line."""
    if not text:
        return []
    doc = _Document(text)
    hits: list[_Hit] = []
    for detector in _engine():
        hits.extend(detector(doc))
    return _to_findings(hits, filename)


def scan_path(path: Path, *, root: Path | None = None) -> list[Finding]:
    """Scan a file, or every text file under a directory (skipping VCS, venv and build dirs).

    Findings name files relative to `root` when given, else as reached from `path`. Binary
    files and files over MAX_FILE_BYTES are skipped: credentials live in text.
    """
    findings: list[Finding] = []
    for file in _iter_files(path):
        text = read_text_file(file)
        if text is not None:
            findings.extend(scan_text(text, filename=_display_name(file, root)))
    return sorted(findings)


def read_text_file(path: Path) -> str | None:
    """The file's text, or None when it is missing, too big, binary or not a regular file."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def _iter_files(path: Path) -> Iterator[Path]:
    if not path.is_dir():
        yield path
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _display_name(file: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return file.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return file.as_posix()


# ============================================================================================
# Text model and results
# ============================================================================================


class _Document:
    """The text, its lower-cased twin (for triggers) and line offsets, computed once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lower = text.lower()
        starts = [0]
        index = text.find("\n")
        while index != -1:
            starts.append(index + 1)
            index = text.find("\n", index + 1)
        self.starts = starts

    def line_number(self, offset: int) -> int:
        """1-based line holding character `offset` (lines end at '\\n', as git counts them)."""
        return bisect.bisect_right(self.starts, offset)

    def line(self, number: int) -> str:
        start = self.starts[number - 1]
        end = self.starts[number] - 1 if number < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def lines_hit_by(self, trigger: re.Pattern[str]) -> list[int]:
        """Line numbers where `trigger` matches the lower-cased text, in order, once each."""
        numbers: list[int] = []
        line_end = -1
        for match in trigger.finditer(self.lower):
            if match.start() < line_end:
                continue
            number = self.line_number(match.start())
            numbers.append(number)
            line_end = self.starts[number] if number < len(self.starts) else len(self.text) + 1
        return numbers


_VENDOR, _KEYWORD, _ENTROPY = 0, 1, 2  # ranks: the most specific evidence names a line


@dataclass(frozen=True)
class _Hit:
    """A line holding a credential. Values never leave the detectors."""

    line: int
    kind: str
    rank: int


def _to_findings(hits: Iterable[_Hit], filename: str) -> list[Finding]:
    """One finding per line and kind; a vendor kind hides the generic ones on its line."""
    by_line: dict[int, list[_Hit]] = {}
    for hit in hits:
        by_line.setdefault(hit.line, []).append(hit)
    findings: list[Finding] = []
    for line, line_hits in by_line.items():
        best = min(hit.rank for hit in line_hits)
        kinds = {hit.kind for hit in line_hits if hit.rank == best}
        findings.extend(Finding(filename, line, kind) for kind in kinds)
    return sorted(findings)


# ============================================================================================
# Value judgement: placeholders, references and how machine-made a value looks
# ============================================================================================


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Examples that vendors publish in their docs; they look real but are inert.
_DOC_EXAMPLES = (
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",  # Stripe's docs (split: push protection)
    "ghp_" + "16C7e42F292c" + "6912E7710c83" + "8347Ae178B4a",  # GitHub's docs
)
_PLACEHOLDER_MARKERS = re.compile(
    r"example|dummy|fake|sample|placeholder|changeme|change_me|change-me|redacted|"
    r"replace[_ -]?(?:me|with|this)|your[_ -]?(?:own|api|app|access|secret|token|key|pass|client)|"
    r"insert[_-]?(?:your|key|token|here)|lorem|ipsum|xxx|\*\*\*|###|\.\.\.|\u2026|"
    r"<[^<>]*>|\[[A-Za-z _\-]+\]|(?:^|[^a-z])here$",
    re.IGNORECASE,
)
# Whole segments that mark a value as made up ("TestSourcePassword", "my_test_key").
_PLACEHOLDER_SEGMENTS = _word_set("test testing demo mock foo bar foobar")
# Values that are a word or a famous default, not a credential.
_COMMON_VALUES = _word_set(
    """
    password passwd pass pwd secret token key apikey api_key access_token auth_token bearer
    basic none null nil true false yes no undefined empty string str bytes required optional
    default hidden masked unset username user admin root guest letmein qwerty secret123
    password1 password123 pass123 pass1234 123456 12345678 hunter2 s3cr3t p@ssw0rd token_here
    your_token mypassword mysecret tiger postgres mysql abc xyz abc123 abcdef qwerty123
    """
)
_TEMPLATE = re.compile(
    r"\$\{\{?\s*[A-Za-z_][\w.\-]*\s*(?:[:|][^}]*)?\}|"  # ${VAR}, ${VAR:-x}, ${{ secrets.X }}
    r"\{\{[^{}]*\}\}|\{%[^{}]*%\}|<%[^%]*%>|#\{[^{}]*\}|"  # {{ x }}, {% x %}, <%= x %>, #{x}
    r"^\$[A-Za-z_(\[{]|^\$\d|"  # $VAR, $(cmd), $1
    r"^%[A-Za-z_][\w.]*%$|%\(?[A-Za-z_]*\)?[sd]\b|^@\{|"  # %VAR%, %s, %(name)s, @{...}
    r"(?<!\{)(?:\{\}|\{\d+\}|\{[A-Za-z_][A-Za-z_.]*(?:![rsa])?(?::[^{}]*)?\})(?!\})"  # {name!r}
)
_REFERENCE = re.compile(
    r"^(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|"  # var.db_password, process.env.TOKEN
    r"[A-Za-z_][\w.]*\s*[(\[]|"  # getenv("X"), os.environ["X"]
    r"ENC[\[(]|enc:|vault:|arn:|!|\*[A-Za-z_]|&[A-Za-z_]|`|\()"  # encrypted, ARN, YAML tags
)
_REGEX_LIKE = re.compile(r"\(\?[=!:<P]|\\[dDwWsSbB]|\[\^|\][*+?{]|\{\d+(?:,\d*)?\}")
_PATH_OR_URL = re.compile(
    r"^(?:/|\./|\.\./|~/|[A-Za-z]:\\|file:|[a-z][a-z0-9+.\-]*://)|"
    r"\.(?:pem|key|crt|cer|der|p12|pfx|jks|json|ya?ml|txt|env|gpg|asc|pub|keystore|cfg|ini)$",
    re.IGNORECASE,
)
_CALL = re.compile(r"[A-Za-z_]\w*\(")
_WHITESPACE = re.compile(r"\s")
_ALNUM = re.compile(r"[^\W_]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_.\-]*$")
_IDENTIFIER_CHARS = re.compile(r"^[A-Za-z0-9_\-./:+ ]*$")
_DIGIT_LETTER_EDGE = re.compile(r"(?<=\d)(?=[A-Za-z])|(?<=[A-Za-z])(?=\d)")
_SPLIT_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
_SPLIT_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SEGMENTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[A-Za-z0-9]+")
_BASE64_VALUE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _words(text: str) -> list[str]:
    """Lower-case words of an identifier or value: `clientSecret_v2` -> client, secret, v, 2."""
    words: list[str] = []
    for part in _SPLIT_SEPARATORS.split(text):
        words.extend(word.lower() for word in _SPLIT_CAMEL.findall(part))
    return words


@functools.lru_cache(maxsize=4096)
def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


@functools.lru_cache(maxsize=4096)
def _repetition(value: str) -> float:
    """Distinct trigrams / all trigrams, case-insensitive: ~1 for random, low for 'abcdabcd'."""
    lower = value.lower()
    grams = [lower[i : i + 3] for i in range(len(lower) - 2)]
    return len(set(grams)) / len(grams) if grams else 1.0


def _longest_run(value: str) -> int:
    """Longest run of consecutive characters ('abcdef', '123456'): alphabets and charsets."""
    best = run = 1
    for previous, code in itertools.pairwise(map(ord, value)):
        run = run + 1 if code - previous == 1 else 1
        best = max(best, run)
    return best


def _max_same_run(value: str) -> int:
    """Longest run of one repeated character ('aaaaaa')."""
    best = run = 1
    for previous, char in itertools.pairwise(value):
        run = run + 1 if char == previous else 1
        best = max(best, run)
    return best


def _char_classes(value: str) -> int:
    """How many of lower case, upper case and digits the value uses."""
    return sum(1 for pattern in _CHAR_CLASSES if pattern.search(value))


_CHAR_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"\d"))


def _is_placeholder(value: str) -> bool:
    """A documentation example, a template or an obviously made-up value."""
    return _is_made_up(value) or _is_filler(value)


def _is_made_up(value: str) -> bool:
    """Says so itself: a published example, a template, 'your-token-here', 'test', 'changeme'."""
    lower = value.lower()
    if value[:1] in "<[" or any(example.lower() in lower for example in _DOC_EXAMPLES):
        return True
    if _PLACEHOLDER_MARKERS.search(value) or _TEMPLATE.search(value):
        return True
    if all(part in _COMMON_VALUES for part in _ALTERNATIVES.split(lower.strip("\"'`"))):
        return True  # `secret`, `true|false`
    if "<" in value or _HTML_ENTITY.search(value):
        return True  # markup around the value, not a value
    return any(segment.lower() in _PLACEHOLDER_SEGMENTS for segment in _SEGMENTS.findall(value))


_ALTERNATIVES = re.compile(r"[|/]")
_HTML_ENTITY = re.compile(r"&(?:[lr][sd]quo|quot|amp|lt|gt|nbsp|#\d+|#x[0-9a-f]+);?", re.I)


def _is_filler(value: str) -> bool:
    """Mostly one character ('xxxx', '0000...TUVWXYZ') or at most two distinct ones."""
    if len(value) < 4:
        return False
    counts = Counter(value.lower())
    return max(counts.values()) >= 0.5 * len(value) or len(counts) <= 2


def _is_wordy(value: str) -> bool:
    """Letters only and reads as words: 'RANDOMSTRINGHERE', 'SlackAppAccessTokenHere'."""
    if not value.isalpha():
        return False
    if value.isupper():
        return True
    pieces = _SPLIT_CAMEL.findall(value)
    wordlike = sum(
        len(piece)
        for piece in pieces
        if len(piece) >= 3 and piece[1:].islower() and any(v in piece.lower() for v in "aeiouy")
    )
    return len(pieces) >= 2 and wordlike >= 0.7 * len(value)


def _is_identifier_like(value: str) -> bool:
    """Made of words and small numbers ('SalesResults-1.2', 'id-Gost28147-89-KeyMeshing').

    Machine-made tokens give themselves away by symbols, long numbers, one- or two-letter
    fragments inside a word ('e8DGg1iJd2') or frequent digit/letter alternation.
    """
    value = value.rstrip("=")  # `NAME=` is a name; base64 padding alone proves nothing
    if not _IDENTIFIER_CHARS.match(value):
        return False
    fragments = 0
    for part in _SPLIT_SEPARATORS.split(value):
        pieces = _SPLIT_CAMEL.findall(part)
        if any(piece.isdigit() and len(piece) > 6 for piece in pieces):
            return False
        if len(pieces) > 1:  # a whole short word ('be', 'a') is prose, not a fragment
            fragments += sum(1 for piece in pieces if piece.isalpha() and len(piece) <= 2)
    return fragments < 2 and len(_DIGIT_LETTER_EDGE.findall(value)) < 3


def _looks_like_reference(value: str) -> bool:
    """A pointer to a secret (variable, call, template, path, pattern), not the secret."""
    if _TEMPLATE.search(value) or _REFERENCE.match(value) or _PATH_OR_URL.search(value):
        return True
    if _REGEX_LIKE.search(value) or value.count("\\") >= 2:
        return True  # a regular expression or a Windows path
    if value[:1] in "{(" and (_CALL.search(value) or value[-1] not in "})"):
        return True  # {base64(user:password)}, or an expression cut off at a space
    inner = value[1:-1] if value.startswith("{") and value.endswith("}") else ""
    return bool(inner) and bool(_IDENTIFIER.match(inner) or _TYPE_UNION.match(inner))


_TYPE_UNION = re.compile(r"^\s*\w+(?:\s*[|,]\s*\w+)+\s*$")  # {string|Buffer}: a type


def _plausible(value: str, min_length: int) -> bool:
    """Floor for every value: long enough, one word, not a placeholder or a reference."""
    if len(value) < min_length or _WHITESPACE.search(value):
        return False
    if not _ALNUM.search(value) or value.isdigit():
        return False
    if _is_placeholder(value) or _looks_like_reference(value):
        return False
    decoded = _printable_base64(value)
    return decoded is None or not _is_placeholder(decoded)


def _printable_base64(value: str) -> str | None:
    """The text behind a base64 value when it decodes to printable ASCII ('Y2hhbmdlbWU=' is
    'changeme'); None for random bytes, which is what an encoded real secret mostly is."""
    if len(value) < 8 or len(value) % 4 or not _BASE64_VALUE.fullmatch(value):
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded.isprintable() else None


def password_like(value: str, *, quoted: bool) -> bool:
    """Could this literal be a password? The lowest bar: passwords need not be random."""
    if quoted and " " in value.strip():
        return _is_passphrase(value.strip())
    if not _plausible(value, 6) or _repetition(value) < 0.45:
        return False
    if not quoted and _IDENTIFIER.match(value):
        return False  # an unquoted bare word is a variable in code
    if value.isalpha():  # letters only: a label or a word, unless long and mixed-case
        return len(value) >= 10 and _char_classes(value) >= 2 and not _is_wordy(value)
    return not (value.replace("-", "").replace("_", "").isalpha() and _is_identifier_like(value))


# Words that mark a quoted multi-word value as UI text or a message, not a passphrase.
_PROSE_WORDS = _word_set(
    """
    password passwort passphrase secret token key pass pwd enter your please required invalid
    incorrect wrong must should least characters chars confirm new old current forgot reset
    show hide type here is are not match matches do does too short long weak strong empty
    missing change update set the a an for this field none null will be been can cannot could
    would shall may might was were has have
    """
)


_CODE_PUNCTUATION = re.compile(r"[()\[\]{}=+<>\"`;,|\\]")


def _is_passphrase(value: str) -> bool:
    """A quoted multi-word password ('correct horse battery staple'), not UI text.

    Labels and messages give themselves away: sentence case ('Mot de passe'), closing
    punctuation, words such as 'enter', 'required' or 'will be', or more than five words.
    """
    words = value.split()
    if len(words) > 5 or value[-1] in ".!?:" or _is_made_up(value):
        return False
    if any(_CODE_PUNCTUATION.search(word) or sum(c.isalpha() for c in word) < 2 for word in words):
        return False  # code (`" + rand(10) + "`), not words
    if words[0][:1].isupper() and all(word.islower() for word in words[1:]):
        return False
    if any(word.lower().strip(",;()") in _PROSE_WORDS for word in words):
        return False
    return len(value.replace(" ", "")) >= 10


def token_like(value: str) -> bool:
    """Could this be an API token or key? It must look machine-made, not like words."""
    if not _plausible(value, 10) or _repetition(value) < 0.45 or _longest_run(value) >= 10:
        return False
    if _is_identifier_like(value) or _is_wordy(value):
        return False
    return len(set(value)) >= 6 and _entropy(value) >= 2.5


def random_like(value: str) -> bool:
    """Evidence on its own: long, mixed, high entropy, not a repeated pattern."""
    return (
        len(value) >= 16
        and _char_classes(value) >= 2
        and _entropy(value) >= 3.0
        and _repetition(value) >= 0.5
        and token_like(value)
    )


# ============================================================================================
# Names: which keys hold credentials
# ============================================================================================

_PASSWORD, _TOKEN, _WEAK = "password", "token", "weak"
_PASSWORD_WORDS = _word_set(
    """
    password passwd pwd pass passphrase passcode pw passwort contrasena contraseña secret
    secrete clientsecret htpasswd
    """
)
_TOKEN_WORDS = _word_set(
    """
    token apikey accesskey secretkey privatekey authtoken accesstoken refreshtoken apitoken
    authkey sessiontoken bearer auth credential credentials creds
    """
)
# `key` names a credential only after one of these: `api_key`, not `schemaKey`.
_KEY_QUALIFIERS = _word_set(
    """
    api access secret private priv auth client account service master signing sign encryption
    encrypt app application db database license licence session shared consumer subscription
    admin root deploy ssh iam hmac cloud storage sas jwt crypto cipher aes rsa gpg pgp secure
    security server webhook write read live prod production x
    """
)
# After the credential word, one of these means the name is about something else:
# `token_url`, `password_length`, `secret_name`, `api_key_id`.
_AFTER_VETO = _word_set(
    """
    id ids name names file filename files path paths dir url uri urls endpoint host type types
    format field fields header prefix suffix version count index idx expiry expires expiration
    expire expired ttl timeout policy provider manager store ref reference arn env var variable
    label hint description desc pattern regex mode method algorithm alg scheme kind class
    enabled enable required source location input column param parameter option options length
    len size min max rule rules template templates generator validator validation strength
    reset confirm confirmation changed error errors message msg text title prompt mask button
    form status state route handler callback fn func function module resource schema spec
    storage vault backend config settings list map dict array buffer chars charset alphabet
    selector secrets tokens keys passwords pressed pair frame code usage helper bits hash hashed
    digest salt encrypted encoded lifetime age duration interval exists exist valid invalid
    check question answer ring mgr control controller delegate view widget realm dialog box
    entry node tag item event request response service client encryption encrypt hashing algo
    cipher
    """
)
# Anywhere in a name, these mean the value is not a secret: `public_key`, `csrf_token`.
_NAME_VETO = _word_set(
    """
    public pub csrf xsrf authenticity nonce checksum integrity sha sha1 sha256 sha512 md5
    fingerprint example sample dummy fake mock placeholder not no without missing cache cached
    """
)


def classify_name(name: str) -> str | None:
    """How strongly a key name says "credential": _PASSWORD, _TOKEN, _WEAK or None.

    Only the last component of a dotted path counts: `stripe.api_key` is a key, `key_node.tag`
    is a tag.
    """
    words = _words(name.rsplit(".", 1)[-1])
    if not words or any(word in _NAME_VETO for word in words):
        return None
    for index in range(len(words) - 1, -1, -1):
        strength = _word_strength(words[index], words[:index])
        if strength is None:
            continue
        if any(word in _AFTER_VETO for word in words[index + 1 :]):
            return None
        return strength
    return None


def _word_strength(word: str, before: Sequence[str]) -> str | None:
    if word in _PASSWORD_WORDS:
        return _PASSWORD
    if word in _TOKEN_WORDS:
        return _TOKEN
    if word == "key":
        return _TOKEN if any(w in _KEY_QUALIFIERS for w in before) else _WEAK
    if word == "login":
        return _WEAK
    return None


def _value_fits(name: str, value: str, *, quoted: bool) -> bool:
    """Is `value` the kind of credential the key `name` would hold?"""
    strength = classify_name(name)
    if strength is None:
        return False
    if not quoted:
        value = _strip_trailing(value)
    if strength == _PASSWORD:
        return password_like(value, quoted=quoted)
    if strength == _TOKEN:
        return token_like(value)
    if _words(name) == ["key"] and _UUID.fullmatch(value):
        return False  # `"key": "<uuid>"` is a dictionary key or an id far more often
    return random_like(value)


_TRAILING_PUNCTUATION = ",;:`\"'\\"
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}


def _strip_trailing(value: str) -> str:
    """Drop what ends the statement, not the value: `x,` -> `x`, `False)}\\n` -> `False`."""
    depth = 0
    for index, char in enumerate(value):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:  # closes a bracket opened before the value began
                value = value[:index]
                break
            depth -= 1
    while value:
        last = value[-1]
        unbalanced = last in _CLOSERS and value.count(last) > value.count(_CLOSERS[last])
        if last not in _TRAILING_PUNCTUATION and not unbalanced:
            break
        value = value[:-1]
    return value


# ============================================================================================
# Vendor formats
# ============================================================================================

_Detector = Callable[[_Document], Iterator[_Hit]]

# How strictly a vendor match is checked. STRICT: a fixed-length format, so the match must not
# sit inside a longer word. PREFIXED: the match starts a token and its body must look random.
# LOOSE: random body, anywhere. CONTEXT: the plugin found the value through a key name
# (Cloudant, IBM ...), so only placeholders are refused. URL_PASSWORD: `scheme://user:pw@host`.
_STRICT, _PREFIXED, _LOOSE, _CONTEXT, _URL_PASSWORD = "strict", "prefixed", "loose", "ctx", "url"
_VENDOR_MIN_LENGTH = 20
_TOKEN_CHARS = re.compile(r"[^\s\"'`<>(),;\[\]{}|\\]")


def _vendor_value_ok(line: str, start: int, end: int, body: str, mode: str) -> bool:
    """A vendor-format match is real unless glued inside a longer word or made up."""
    if mode == _URL_PASSWORD:
        return _url_password_ok(line, start, body)
    if mode in (_STRICT, _PREFIXED) and start > 0 and line[start - 1].isalnum():
        return False
    if mode == _STRICT and end < len(line) and line[end].isalnum():
        return False
    token = _token_around(line, start, end)
    if _FILLER_NEARBY.search(token) or _TEMPLATE.search(token) or _is_made_up(body):
        return False
    if any(example in token for example in _DOC_EXAMPLES):
        return False
    # Fixed parts (Slack's numeric team ids) may repeat digits; judge the longest part.
    if _is_filler(max(_SPLIT_SEPARATORS.split(body), key=len)):
        return False
    return mode == _CONTEXT or _random_body(body)


# Filler right next to a match makes it a placeholder: `xoxp-123-456-####`, `ghp_<token>`.
# (Words such as "example" count only in the match itself: a host may be example.com.)
_FILLER_NEARBY = re.compile(r"xxx|\*\*\*|###|\.\.\.|\u2026|<[^<>]*>", re.IGNORECASE)


def _token_around(line: str, start: int, end: int) -> str:
    """The whitespace- and quote-delimited token that contains line[start:end]."""
    while start > 0 and _TOKEN_CHARS.match(line[start - 1]):
        start -= 1
    while end < len(line) and _TOKEN_CHARS.match(line[end]):
        end += 1
    return line[start:end]


def _random_body(body: str) -> bool:
    """The random part of a token: no words, no runs ('aaaaaa', 'abcdefgh'), no repeats."""
    parts = _SPLIT_SEPARATORS.split(body)
    if any(len(p) >= 12 and p.isalpha() and (_is_wordy(p) or p.islower()) for p in parts):
        return False
    longest = max(parts, key=len)
    return (
        _max_same_run(longest) < 6
        and _longest_run(longest.lower()) < 8
        and _repetition(body) >= 0.45
    )


def _url_password_ok(line: str, start: int, password: str) -> bool:
    """`scheme://user:password@host`: any literal counts but placeholders and `user:user`."""
    user = line[: max(start - 1, 0)].rsplit("://", 1)[-1].rsplit("/", 1)[-1]
    if password == user or not _plausible(password, 3):
        return False
    return not any(c in password for c in "{}<>")


@dataclass(frozen=True)
class _Pattern:
    """A vendor format: its kind, a literal trigger (lower-case) and the real regex.

    The regex names a `body` group, the random part after a fixed prefix, which is what the
    placeholder checks look at (so `sk_test_` does not count as "test" in the value).
    """

    kind: str
    trigger: str
    regex: str
    mode: str = _PREFIXED


# Formats detect-secrets 1.5 does not know, or knows only in an older shape.
_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "GitHub Token", "github_pat_", r"github_pat_(?P<body>[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
    ),
    _Pattern("Anthropic API Key", "sk-ant-", r"sk-ant-[a-z]+\d\d-(?P<body>[\w\-]{32,})"),
    _Pattern(
        "OpenAI API Key",
        "sk-",
        r"(?<![\w\-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?(?P<body>[A-Za-z0-9_\-]{32,})",
    ),
    _Pattern(
        "Password in URL",
        "://",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*:(?P<body>[^\s/:'\"]+)@[\w\-]+(?:\.[\w\-]+)*",
        _URL_PASSWORD,
    ),
    _Pattern("Google API Key", "aiza", r"AIza(?P<body>[\w\-]{35})(?![\w\-])"),
    _Pattern("npm Token", "npm_", r"npm_(?P<body>[A-Za-z0-9]{36})(?![\w\-])"),
    _Pattern("Slack Token", "xox", r"xox[a-z](?:\.xox[a-z])?-(?P<body>\d+-[\w\-]{12,})"),
    _Pattern("Slack Token", "xapp-", r"xapp-\d-(?P<body>[A-Z0-9]+-\d+-[a-z0-9]{32,})"),
    _Pattern(
        "Slack Webhook",
        "hooks.slack.com",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/"
        r"T[A-Z0-9]+/[A-Z0-9]+/(?:\d+/)?(?P<body>[A-Za-z0-9]{16,})",
    ),
    _Pattern("Stripe Key", "k_", r"[rs]k_(?:live|test|prod)_(?P<body>[0-9A-Za-z]{20,})"),
    _Pattern(
        "Azure Client Secret",
        "q~",
        r"(?<![\w~.\-])(?P<body>[\w~.\-]{3}\dQ~[\w~.\-]{31,34})(?![\w~.\-])",
    ),
    _Pattern("Hugging Face Token", "hf_", r"(?<![\w\-])hf_(?P<body>[A-Za-z]{34})(?![\w\-])"),
    _Pattern("Hugging Face Token", "api_org_", r"api_org_(?P<body>[A-Za-z]{34})(?![\w\-])"),
    _Pattern("1Password Token", "ops_eyj", r"ops_(?P<body>eyJ[\w+/=\-]{100,})"),
    _Pattern(
        "1Password Secret Key",
        "a3-",
        r"A3-(?P<body>[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})(?:-[A-Z0-9]{5}){3})\b",
    ),
    _Pattern("age Secret Key", "age-secret-key-1", r"AGE-SECRET-KEY-1(?P<body>[0-9A-Z]{58})"),
    _Pattern("Atlassian API Token", "atatt3", r"ATATT3(?P<body>[\w\-=]{150,})"),
    _Pattern("Cloudflare Origin CA Key", "v1.0-", r"v1\.0-(?P<body>[a-f0-9]{24}-[a-f0-9]{146})"),
    _Pattern("Azure SAS Token", "sig=", r"(?<=[?&])sig=(?P<body>[A-Za-z0-9%+/]{30,}={0,2})"),
    _Pattern("Databricks Token", "dapi", r"dapi(?P<body>[a-f0-9]{32})(?:-\d)?\b"),
    _Pattern("Facebook Token", "eaa", r"EAA(?P<body>[A-Za-z0-9]{100,})"),
    _Pattern("Facebook Token", "|", r"\b\d{15,16}\|(?P<body>[\w\-]{27})(?![\w\-])"),
    _Pattern("Fly.io Token", "fo1_", r"(?<![\w\-])fo1_(?P<body>[\w\-]{43})(?![\w\-])"),
    _Pattern("Fly.io Token", "fm", r"\bfm[12][ar]?_(?P<body>[\w+/=]{100,})"),
    _Pattern("Grafana Token", "glc_", r"glc_(?P<body>[A-Za-z0-9+/]{32,400}={0,2})"),
    _Pattern("Grafana Token", "glsa_", r"glsa_(?P<body>[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})"),
    _Pattern(
        "Terraform Cloud Token", ".atlasv1.", r"[A-Za-z0-9]{14}\.atlasv1\.(?P<body>[\w=\-]{60,70})"
    ),
    _Pattern("Vault Token", "hv", r"(?<![\w.])hv[sb]\.(?P<body>[\w\-]{24,})"),
    _Pattern("Vault Token", "s.", r"(?<![\w.])s\.(?P<body>[A-Za-z0-9]{24})(?![\w.])"),
    _Pattern("Heroku API Key", "hrku-", r"HRKU-(?P<body>AA[\w\-]{58})"),
    _Pattern("Notion Token", "ntn_", r"ntn_(?P<body>\d{11}[A-Za-z0-9]{35})\b"),
    _Pattern("Perplexity API Key", "pplx-", r"pplx-(?P<body>[A-Za-z0-9]{48})\b"),
    _Pattern("Sentry Token", "sntry", r"sntry[su]_(?P<body>[\w+/=]{40,})"),
    _Pattern(
        "Sourcegraph Token", "sgp_", r"sgp_(?:[a-fA-F0-9]{16}_|local_)?(?P<body>[a-fA-F0-9]{40})\b"
    ),
    _Pattern("Square Token", "sq0", r"sq0(?:atp|csp)-(?P<body>[\w\-]{22,43})"),
    _Pattern("Square Token", "eaaa", r"EAAA(?P<body>[\w\-]{60})(?![\w\-])"),
    _Pattern("Sonar Token", "sq", r"\bsq[upa]_(?P<body>[a-f0-9]{40})\b"),
    _Pattern(
        "Doppler Token", "dp.", r"dp\.(?:pt|st|sa|ct|scim|audit)\.(?P<body>[A-Za-z0-9]{40,44})"
    ),
    _Pattern("Shopify Token", "shp", r"shp(?:at|ca|pa|ss)_(?P<body>[a-fA-F0-9]{32})"),
    _Pattern("DigitalOcean Token", "do", r"do[opr]_v1_(?P<body>[a-f0-9]{64})"),
    _Pattern("Docker Hub Token", "dckr_", r"dckr_(?:pat|oat)_(?P<body>[\w\-]{27,})"),
    _Pattern("Linear API Key", "lin_api_", r"lin_api_(?P<body>[A-Za-z0-9]{40})"),
    _Pattern("Postman API Key", "pmak-", r"PMAK-(?P<body>[a-f0-9]{24}-[a-f0-9]{34})"),
    _Pattern("RubyGems API Key", "rubygems_", r"rubygems_(?P<body>[a-f0-9]{48})"),
    _Pattern("New Relic Key", "nr", r"NR(?:AK|II|AA)-(?P<body>[A-Z0-9]{27,32})"),
    _Pattern("Pulumi Token", "pul-", r"\bpul-(?P<body>[a-f0-9]{40})\b"),
    _Pattern("Intra42 Secret", "s-s4t2", r"s-s4t2(?:ud|af)-(?P<body>[a-f0-9]{64})"),
    _Pattern("MaxMind License Key", "_mmk", r"\b(?P<body>[A-Za-z0-9]{6}_[A-Za-z0-9]{29})_mmk\b"),
    _Pattern("Scalingo Token", "tk-us-", r"tk-us-(?P<body>[\w\-]{48})"),
    _Pattern("ClickHouse Key", "4b1d", r"\b4b1d(?P<body>[A-Za-z0-9]{38})\b"),
    _Pattern(
        "AWS Bedrock API Key",
        "bedrock-api-key-",
        r"bedrock-api-key-(?P<body>YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=]*)",
    ),
    _Pattern("AWS Bedrock API Key", "absk", r"ABSK(?P<body>[A-Za-z0-9+/]{109,269}={0,2})"),
    _Pattern(
        "JSON Web Token", "eyj", r"(?<![\w\-])eyJ(?P<body>[\w\-]{10,}\.eyJ[\w\-]{10,}\.[\w\-]*)"
    ),
    _Pattern(
        "Sidekiq Secret",
        "contribsys__com",
        r"BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[\"']?\s*[:=]\s*[\"']?"
        r"(?P<body>[a-f0-9]{8}:[a-f0-9]{8})",
    ),
)


def _pattern_detector(pattern: _Pattern) -> _Detector:
    trigger = re.compile(re.escape(pattern.trigger))
    regex = re.compile(pattern.regex)

    def detect(doc: _Document) -> Iterator[_Hit]:
        for number in doc.lines_hit_by(trigger):
            line = doc.line(number)
            for match in regex.finditer(line):
                body = match.group("body")
                start = match.start("body") if pattern.mode == _URL_PASSWORD else match.start()
                if _vendor_value_ok(line, start, match.end(), body, pattern.mode):
                    yield _Hit(number, pattern.kind, _VENDOR)
                    break

    return detect


# detect-secrets regex plugins: class -> (our kind, trigger on the lower-cased text, mode).
# Each plugin's matches start with or sit next to its trigger, so untouched lines are skipped.
# Not used: KeywordDetector (see the module docstring), PrivateKeyDetector (replaced by a check
# that the block holds key material) and IPPublicDetector (an address is not a credential).
_PLUGINS: dict[str, tuple[str, str, str]] = {
    "AWSKeyDetector": ("AWS Access Key", r"a3t|abia|acca|akia|asia|aws", _STRICT),
    "ArtifactoryDetector": ("Artifactory Token", r"akc|ap[0-9a-f]", _CONTEXT),
    "AzureStorageKeyDetector": ("Azure Storage Key", r"accountkey=", _CONTEXT),
    "BasicAuthDetector": ("Password in URL", r"://[^\s/@]*:[^\s/@]*@", _URL_PASSWORD),
    "CloudantDetector": ("Cloudant Credentials", r"cl", _CONTEXT),
    "DiscordBotTokenDetector": ("Discord Bot Token", r"\.[\w\-]{6}\.[\w\-]{27}", _LOOSE),
    "GitHubTokenDetector": ("GitHub Token", r"gh[pousr]_", _STRICT),
    "GitLabTokenDetector": ("GitLab Token", r"gl|gr1348941", _PREFIXED),
    "IbmCloudIamDetector": ("IBM Cloud IAM Key", r"ibm|iam|cloud", _CONTEXT),
    "IbmCosHmacDetector": ("IBM COS HMAC Key", r"secret", _CONTEXT),
    "JwtTokenDetector": ("JSON Web Token", r"eyj", _PREFIXED),
    "MailchimpDetector": ("Mailchimp API Key", r"-us\d", _STRICT),
    "NpmDetector": ("npm Token", r":_authtoken=", _CONTEXT),
    "OpenAIDetector": ("OpenAI API Key", r"t3blbkfj", _PREFIXED),
    "PypiTokenDetector": ("PyPI Token", r"pypi-age", _PREFIXED),
    "SendGridDetector": ("SendGrid API Key", r"sg\.", _PREFIXED),
    "SlackDetector": ("Slack Token", r"xox|hooks\.slack\.com", _PREFIXED),
    "SoftlayerDetector": ("SoftLayer Credentials", r"sl|softlayer", _CONTEXT),
    "SquareOAuthDetector": ("Square Token", r"sq0csp-", _PREFIXED),
    "StripeDetector": ("Stripe Key", r"k_live_", _STRICT),
    "TelegramBotTokenDetector": ("Telegram Bot Token", r":[\w\-]{35}", _STRICT),
    "TwilioKeyDetector": ("Twilio API Key", r"(?:ac|sk)[a-z0-9]{32}", _STRICT),
}


def _plugin_detector(plugin: Any, kind: str, trigger: str, mode: str) -> _Detector:
    """Run a detect-secrets regex plugin's `denylist` on the lines its trigger hit.

    We iterate the plugin's own compiled patterns rather than `analyze_string` because the
    checks need positions, and `analyze_string` reports only capture groups, which for some
    plugins are just the prefix (`glpat`).
    """
    compiled = re.compile(trigger)
    min_length = _VENDOR_MIN_LENGTH if mode in (_STRICT, _PREFIXED, _LOOSE) else 1
    patterns: tuple[re.Pattern[str], ...] = tuple(plugin.denylist)

    def detect(doc: _Document) -> Iterator[_Hit]:
        for number in doc.lines_hit_by(compiled):
            line = doc.line(number)
            for start, end in _secret_spans(patterns, line):
                value = line[start:end]
                if len(value) >= min_length and _vendor_value_ok(line, start, end, value, mode):
                    yield _Hit(number, _refine_kind(kind, value), _VENDOR)
                    break

    return detect


def _refine_kind(kind: str, value: str) -> str:
    """detect-secrets calls a Slack webhook URL a "Slack Token"; say what it is."""
    return "Slack Webhook" if "hooks.slack.com" in value else kind


def _secret_spans(patterns: Iterable[re.Pattern[str]], line: str) -> Iterator[tuple[int, int]]:
    """Span of each match's secret: its last capture group that is not a leading prefix."""
    for pattern in patterns:
        for match in pattern.finditer(line):
            span = match.span()
            for group in range(pattern.groups, 0, -1):
                start, end = match.span(group)
                if start > match.start() and end > start:
                    span = (start, end)
                    break
            yield span


# ============================================================================================
# Random-looking quoted strings
# ============================================================================================

_ENTROPY_PLUGINS: dict[str, float] = {"Base64HighEntropyString": 4.5, "HexHighEntropyString": 3.0}
# detect-secrets heuristics for entropy-only candidates. They are too blunt for vendor
# formats (`is_potential_uuid` would hide npm tokens, which are UUIDs). Its template, `$` and
# non-alphanumeric filters are left out: the entropy plugins' charsets never match those.
_ENTROPY_FILTERS = (
    "detect_secrets.filters.heuristic.is_sequential_string",
    "detect_secrets.filters.heuristic.is_potential_uuid",
    "detect_secrets.filters.heuristic.is_likely_id_string",
    "detect_secrets.filters.heuristic.is_indirect_reference",
)
_ENTROPY_MIN_LENGTH = 20
_CONTEXT_CHARS = 120  # how far around a candidate its context (a key name, "sha256") is read
_ENTROPY_TRIGGER = re.compile(r"[\"'][a-z0-9+/=_\-]{20}")
_NEAREST_NAME = re.compile(r"([A-Za-z_][\w.\-]*)[\"'`\]]?\s*(?::=|=>|[:=])\s*[\"'`]?$")
# Context in which a random string is a digest, an id or an anti-forgery value.
_ENTROPY_CONTEXT_VETO = re.compile(
    r"sha\d*|md5|hash|checksum|digest|integrity|commit|revision|\brev\b|srcrev|etag|nonce|"
    r"csrf|xsrf|authenticity|signature|fingerprint|uuid|guid|public|version|cache|"
    r"sri|thumbprint|salt|iv\b|\bid\b|_id\b|serial|modulus",
    re.IGNORECASE,
)
_DIGEST_ABOVE = re.compile(r"sha-?\d+|md5|blake|hash|checksum|digest|integrity|\balg", re.I)
_SRI_HASH = re.compile(r"sha\d+-", re.IGNORECASE)


def _entropy_detector(plugins: Sequence[Any], filters: Sequence[Any]) -> _Detector:
    def detect(doc: _Document) -> Iterator[_Hit]:
        for number in doc.lines_hit_by(_ENTROPY_TRIGGER):
            line = doc.line(number)
            if _entropy_line_ok(line, plugins, filters) and not _digest_above(doc, number):
                yield _Hit(number, KIND_ENTROPY, _ENTROPY)

    return detect


def _digest_above(doc: _Document, number: int) -> bool:
    """`{"alg": "SHA-256",\\n "content": "<hex>"}`: the hint sits on a line above (SBOMs)."""
    return any(_DIGEST_ABOVE.search(doc.line(n)) for n in range(max(1, number - 2), number))


def _entropy_line_ok(line: str, plugins: Sequence[Any], filters: Sequence[Any]) -> bool:
    return any(
        len(value) >= _ENTROPY_MIN_LENGTH and _entropy_value_ok(line, value, plugin, filters)
        for plugin in plugins
        for value in plugin.analyze_string(line)
    )


def _entropy_value_ok(line: str, value: str, plugin: Any, filters: Sequence[Any]) -> bool:
    """Cheapest checks first: a minified file can hold thousands of candidates."""
    start = line.find(value)
    before = line[max(0, start - _CONTEXT_CHARS) : max(start - 1, 0)]
    after = line[start + len(value) : start + len(value) + _CONTEXT_CHARS]
    if _SRI_HASH.match(value) or _ENTROPY_CONTEXT_VETO.search(before + " " + after):
        return False
    if not random_like(value) or _plugin_entropy(plugin, value) <= plugin.entropy_limit:
        return False
    name = _NEAREST_NAME.search(before)
    if name and _words(name.group(1)) == ["key"]:
        return False  # `"key": "..."` is a dictionary key far more often than a credential
    return not any(_call_filter(f, secret=value, line=line, plugin=plugin) for f in filters)


def _plugin_entropy(plugin: Any, value: str) -> float:
    """The plugin's own measure. For base64 that is plain Shannon entropy (the value holds
    only charset characters), which we compute faster; hex lowers it for all-digit values."""
    if type(plugin).__name__ == "Base64HighEntropyString":
        return _entropy(value)
    return float(plugin.calculate_shannon_entropy(value))


def _call_filter(function: Any, **kwargs: Any) -> bool:
    """Call a detect-secrets filter with just the arguments it declares."""
    wanted = getattr(function, "injectable_variables", set(kwargs))
    return bool(function(**{k: v for k, v in kwargs.items() if k in wanted}))


# ============================================================================================
# Assignments: credential-named keys given literal values
# ============================================================================================

_KEYWORD_TRIGGER = re.compile(
    r"pass|pwd|secret|token|key|auth|cred|bearer|login|contrase|_pw\b|\bpw\b|-u\s|--user"
)
_KEYWORD_IN_LINE = re.compile(r"pass|pwd|secret|token|key|auth|cred|login|contrase|pw\b")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_ASSIGN = re.compile(
    r"(?<![\w.])(?<!\w-)(?P<name>[A-Za-z_][\w.\-]*)(?P<kq>[\"'`]?)\]?"
    r"(?:[ \t]*:?[ \t]*(?:string|str|String|&str|const|final)[ \t]*(?==))?"  # `name string =`
    r"[ \t]*(?P<op>:::=|::=|:=|\?=|\.=|=>|===|!==|==|!=|=|:|,|[ \t](?=[\"']))[ \t]*"
    r"(?:[rbuRBUfF]{1,2}(?=[\"']))?"  # Python string prefixes: r"...", b'...', f"..."
    r"(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|`(?P<bq>[^`]*)`|(?P<bare>[^\s\"'`,;]+))"
)
_COMPARISONS = frozenset({"==", "!=", "===", "!=="})
_REVERSED = re.compile(
    r"(?P<q>[\"'`])(?P<value>[^\"'`]+)(?P=q)[ \t]*(?:===|!==|==|!=)[ \t]*"
    r"(?P<name>[A-Za-z_][\w.]*)"
)
_XML_ATTRS = re.compile(
    r"key\s*=\s*\"(?P<name>[^\"]+)\"\s+value\s*=\s*\"(?P<value>[^\"]*)\"", re.IGNORECASE
)
_XML_ELEMENT = re.compile(r"<(?P<name>[\w.\-:]+)>\s*(?P<value>[^<\s]+)\s*</(?P=name)>")
_CLI_FLAG = re.compile(
    r"(?:^|\s)--?(?P<name>[A-Za-z][\w\-]*)[ \t]+(?P<q>[\"']?)(?P<value>[^\s\"'\-][^\s\"']*)(?P=q)"
)
# `mysql -pSECRET`, `sshpass -p SECRET`: tools whose -p is the password itself.
_PASSWORD_P_TOOLS = re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb|sshpass)\b")
_ATTACHED_P = re.compile(r"(?:^|\s)-p[ \t]?(?P<q>[\"']?)(?P<value>[^\s\"'-][^\s\"']*)(?P=q)")
_CURL_USER = re.compile(r"(?:^|\s)(?:-u|--user)[ \t]+(?P<arg>(?:\"[^\"]*\"|'[^']*'|[^\s\"'])+)")
_AUTH_HEADER = re.compile(
    r"(?<![\w\-])(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?P<scheme>bearer|basic|token|api-token|apikey|api-key|digest|sso-key|ssws|key|otp)"
    r"[ \t]+)?(?P<value>[^\s\"',;]+)",
    re.IGNORECASE,
)
_NETRC = re.compile(r"\bmachine\s+\S+.*?\bpassword\s+(?P<value>\S+)")


def _assignment_detector(doc: _Document) -> Iterator[_Hit]:
    for number in doc.lines_hit_by(_KEYWORD_TRIGGER):
        if _line_has_credential(doc.line(number)):
            yield _Hit(number, KIND_KEYWORD, _KEYWORD)


def _line_has_credential(line: str) -> bool:
    """Try each credential syntax whose tell-tale characters the line contains."""
    lower = line.lower()
    checks: list[Callable[[str], bool]] = [_has_assignment]
    if "authorization" in lower:
        checks.append(_has_auth_header)
    if "-u" in line:
        checks.append(_has_curl_user)
    if " -" in line or line.startswith("-"):
        checks.append(_has_cli_flag)
    if "==" in line or "!=" in line:
        checks.append(_has_reversed_comparison)
    if "<" in line or "value" in lower:
        checks.append(_has_xml_value)
    if "machine" in lower:
        checks.append(_has_netrc_password)
    return any(check(line) for check in checks)


def _assignments(line: str) -> Iterator[re.Match[str]]:
    """`_ASSIGN` tried at the start of every name that holds a credential word.

    Anchoring on the names (instead of scanning left to right) keeps an earlier, unrelated
    `name "value"` pair from swallowing the credential (`-H "apikey: ..."`).
    """
    tried: set[int] = set()
    for word in _KEYWORD_IN_LINE.finditer(line.lower()):
        start = word.start()
        while start > 0 and line[start - 1] in _NAME_CHARS:
            start -= 1
        while start < word.start() and line[start] in "-.0123456789":
            start += 1
        if start not in tried:
            tried.add(start)
            match = _ASSIGN.match(line, start)
            if match:
                yield match


def _has_assignment(line: str) -> bool:
    for match in _assignments(line):
        name, op = match.group("name"), match.group("op")
        if name.lower() in ("authorization", "proxy-authorization"):
            continue  # `_has_auth_header` knows the schemes
        quoted = match.group("bare") is None
        value = next(v for v in match.group("dq", "sq", "bq", "bare") if v is not None)
        if op in _COMPARISONS and not quoted:
            continue  # compared with a variable, not a literal
        if op == ",":
            if _is_name_value_call(line, match, value):
                return True
            continue
        if not quoted:
            value = _rest_of_line_value(line, match, value)
        if _value_fits(name, value, quoted=quoted):
            return True
    return False


def _is_name_value_call(line: str, match: re.Match[str], value: str) -> bool:
    """`setProperty("API_TOKEN", "...")` pairs a name and a value, but so does any list of
    strings, so the name must be a whole string literal and the value machine-made."""
    name_start = match.start("name")
    opened = name_start > 0 and line[name_start - 1] in "'\""
    closed = bool(match.group("kq")) and match.group("bare") is None
    return (
        opened and closed and classify_name(match.group("name")) is not None and token_like(value)
    )


def _rest_of_line_value(line: str, match: re.Match[str], value: str) -> str:
    """In a `KEY=a,b;c` line (env, INI, YAML) the value runs to the end of the line; in code
    `f(key=a, b)` it stops at the comma. A line that is just the statement, with no space
    after the value, tells the two apart."""
    before = line[: match.start("name")].strip()
    rest = line[match.start("bare") :].rstrip()
    if before not in _STATEMENT_STARTS or any(c.isspace() for c in rest):
        return value
    return rest


_STATEMENT_STARTS = frozenset({"", "-", "export", "set", "ENV", "ARG", "setenv"})


def _has_auth_header(line: str) -> bool:
    for match in _AUTH_HEADER.finditer(line):
        value = _strip_trailing(match.group("value"))
        if (match.group("scheme") or "").lower() == "basic":
            if _basic_credentials_ok(value):
                return True
        elif token_like(value):
            return True
    return False


def _basic_credentials_ok(value: str) -> bool:
    """`Basic base64(user:password)`: judge the decoded password when it decodes."""
    if not _plausible(value, 8):
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return True
    user, colon, password = decoded.partition(":")
    if not colon:
        return True
    if not password:  # the header alone authenticates as `user`
        return _plausible(user, 3)
    return _url_password_ok(decoded, len(user) + 1, password)


def _has_curl_user(line: str) -> bool:
    for match in _CURL_USER.finditer(line):
        word = re.sub(r"[\"']", "", match.group("arg")).rstrip(",;`)")
        user, colon, password = word.partition(":")
        if not colon or _is_placeholder(word):
            continue
        if password_like(password, quoted=True) or (not password and token_like(user)):
            return True  # `-u KEY:` sends an API key as the user name (Stripe, Mailgun ...)
    return False


def _has_cli_flag(line: str) -> bool:
    # A shell argument is a literal even unquoted (a variable would start with `$`).
    if any(
        _value_fits(m.group("name"), m.group("value"), quoted=True)
        for m in _CLI_FLAG.finditer(line)
    ):
        return True
    return _PASSWORD_P_TOOLS.search(line) is not None and any(
        password_like(_strip_trailing(m.group("value")), quoted=True)
        for m in _ATTACHED_P.finditer(line)
    )


def _has_reversed_comparison(line: str) -> bool:
    """`if ("literal" == password)`."""
    return any(
        _value_fits(m.group("name"), m.group("value"), quoted=True)
        for m in _REVERSED.finditer(line)
    )


def _has_xml_value(line: str) -> bool:
    """`<add key="DbPassword" value="..."/>` (.NET, NuGet) and `<password>...</password>`."""
    matches = [*_XML_ATTRS.finditer(line), *_XML_ELEMENT.finditer(line)]
    return any(
        _value_fits(m.group("name").split(":")[-1], m.group("value"), quoted=True) for m in matches
    )


def _has_netrc_password(line: str) -> bool:
    """`machine host login user password SECRET` (~/.netrc): space-separated."""
    match = _NETRC.search(line)
    return match is not None and password_like(match.group("value"), quoted=True)


# ============================================================================================
# Whole-document shapes: private keys, Kubernetes Secrets
# ============================================================================================

_KEY_HEADER = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d", re.IGNORECASE
)
_KEY_TRIGGER = re.compile(r"private key|putty-user-key-file")
_KEY_END = re.compile(r"-----END")
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/=]{20,}$")
_KEY_MATERIAL_MIN = 64  # base64 characters: a header around '...' or 'anything' is not a key


def _private_key_detector(doc: _Document) -> Iterator[_Hit]:
    if not _KEY_TRIGGER.search(doc.lower):
        return
    for match in _KEY_HEADER.finditer(doc.text):
        body = doc.text[match.end() : match.end() + 8192]
        end = _KEY_END.search(body)
        if end:
            body = body[: end.start()]
        if _key_material(body) >= _KEY_MATERIAL_MIN:
            yield _Hit(doc.line_number(match.start()), "Private Key", _VENDOR)


def _key_material(body: str) -> int:
    """Base64 characters in the block's body lines (also when embedded with literal \\n)."""
    total = 0
    for raw in body.replace("\\n", "\n").replace("\\r", "").splitlines():
        piece = raw.strip().strip("\"',")
        if _BASE64_LINE.match(piece) and not _is_placeholder(piece):
            total += len(piece)
    return total


_K8S_KIND = re.compile(r"^\s*[\"']?kind[\"']?\s*:\s*[\"']?secret[\"']?\s*,?\s*$", re.IGNORECASE)
_K8S_DATA = re.compile(r"^(?P<indent>\s*)(?P<section>data|stringData)\s*:\s*$")
_YAML_ENTRY = re.compile(r"^(?P<indent>\s*)(?P<key>[^\s:#][^:]*?)\s*:\s*(?P<value>.*?)\s*$")
_K8S_MIN_BASE64 = 12  # shorter values ('YWRtaW4=' = admin) are user names and flags


def _k8s_secret_detector(doc: _Document) -> Iterator[_Hit]:
    """Values under `data:` / `stringData:` of a `kind: Secret` manifest are credentials."""
    if "kind" not in doc.lower or "secret" not in doc.lower:
        return
    lines = doc.text.split("\n")
    for first, last in _yaml_documents(lines):
        if any(_K8S_KIND.match(lines[i]) for i in range(first, last)):
            yield from _k8s_data_hits(lines, first, last)


def _yaml_documents(lines: Sequence[str]) -> Iterator[tuple[int, int]]:
    start = 0
    for index, line in enumerate(lines):
        if line.strip() == "---":
            yield start, index
            start = index + 1
    yield start, len(lines)


def _k8s_data_hits(lines: Sequence[str], first: int, last: int) -> Iterator[_Hit]:
    index = first
    while index < last:
        header = _K8S_DATA.match(lines[index].replace("\t", "    "))
        index += 1
        if not header:
            continue
        indent = len(header.group("indent"))
        encoded = header.group("section") == "data"
        while index < last:
            text = lines[index].replace("\t", "    ")
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break  # the section ended
            value = _k8s_value(lines, index, last)
            if value and _k8s_value_is_secret(value, encoded=encoded):
                yield _Hit(index + 1, "Kubernetes Secret", _VENDOR)
            index += 1


def _k8s_value(lines: Sequence[str], index: int, last: int) -> str:
    entry = _YAML_ENTRY.match(lines[index])
    if not entry or entry.group("key").lstrip().startswith("#"):
        return ""
    value = entry.group("value").strip("\"'")
    if value in ("|", ">", "|-", ">-") and index + 1 < last:
        value = lines[index + 1].strip()  # a block scalar: the value starts on the next line
    return value


def _k8s_value_is_secret(value: str, *, encoded: bool) -> bool:
    if not encoded:
        return password_like(value, quoted=True)
    if len(value) < _K8S_MIN_BASE64 or not _BASE64_VALUE.fullmatch(value):
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return False
    decoded = decoded.strip()
    # A word in structured data (a registry host in a .dockercfg) does not make it fake.
    return bool(decoded) and (decoded.startswith(("{", "[")) or not _is_placeholder(decoded))


# ============================================================================================
# Engine: detect-secrets configured once, explicitly, then reused
# ============================================================================================

_DETECTORS: tuple[_Detector, ...] | None = None
_DETECTORS_LOCK = threading.Lock()


def _engine() -> tuple[_Detector, ...]:
    """The detectors, built once per process (loading detect-secrets takes ~0.2 s)."""
    global _DETECTORS
    if _DETECTORS is None:
        with _DETECTORS_LOCK:
            if _DETECTORS is None:
                _DETECTORS = _build_detectors()
    return _DETECTORS


def _build_detectors() -> tuple[_Detector, ...]:
    plugins, filters = _load_detect_secrets()
    by_name = {type(plugin).__name__: plugin for plugin in plugins}
    detectors: list[_Detector] = [
        _plugin_detector(by_name[name], kind, trigger, mode)
        for name, (kind, trigger, mode) in _PLUGINS.items()
    ]
    detectors.extend(_pattern_detector(pattern) for pattern in _PATTERNS)
    entropy = [by_name[name] for name in _ENTROPY_PLUGINS]
    detectors.append(_entropy_detector(entropy, filters))
    detectors.extend((_assignment_detector, _private_key_detector, _k8s_secret_detector))
    return tuple(detectors)


def _load_detect_secrets() -> tuple[list[Any], list[Any]]:
    """Instantiate exactly our plugins and filters through detect-secrets' settings API.

    `transient_settings` restores the process-wide settings on exit, so other users of
    detect-secrets in this process are unaffected; we keep the instances it built.
    """
    from detect_secrets.settings import get_filters, get_plugins, transient_settings

    plugins_used: list[dict[str, Any]] = [{"name": name} for name in _PLUGINS]
    plugins_used += [{"name": name, "limit": limit} for name, limit in _ENTROPY_PLUGINS.items()]
    config = {
        "plugins_used": plugins_used,
        "filters_used": [{"path": path} for path in _ENTROPY_FILTERS],
    }
    with transient_settings(config):
        plugins = list(get_plugins())
        filters = [f for f in get_filters() if getattr(f, "path", "") in _ENTROPY_FILTERS]
    return plugins, filters
