"""`make eval`: score the risk gate and the secrets gate on public labelled sets from other projects.

Why this exists: the gates' own unit tests are written by the people who wrote the gates, so they
share their blind spots. The sets in `../shared/eval/` (see its README) hold commands and texts
that *other* tools' test suites label, which is the nearest thing to an outside opinion we have.
They stay outside the repository because they come under their own licences, so this script
reads them in place: from `../shared/eval` next to the repository root, or from the folder named
by `AGENTHQ_EVAL_DIR`. Missing data is exit code 2 with a message naming the folder; otherwise
the figures are reported, never asserted, and the exit code is 0.

    .venv/bin/python benchmarks/eval.py [--json] [--show-misses] [--auto-max 20] [--refuse-min 80]

Risk gate: each command goes through `assess` and then `decide` with the default `Policy`, exactly
as the risk gate does. An `unsafe` command counts as caught when the verdict is `ask` or `refuse`
(anything but an automatic `run`). Only POSIX records are scored: the gate parses bash, so cmd.exe
and PowerShell records are skipped and counted.

Secrets gate: a text counts as flagged when `scan_text` returns at least one finding. No text from
the set is ever printed (they are look-alike credentials): misses are listed by id and kind only.

Both gates: records marked `contested` (their label depends on a rule, a path or which source you
ask) are left out of the headline, as the README asks, and summarised on their own line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agenthq.gates.policy import Policy, decide
from agenthq.gates.risk import assess
from agenthq.gates.secrets_scan import scan_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"
ENV_VAR = "AGENTHQ_EVAL_DIR"
COMMANDS_FILE = "command_safety.jsonl"
SECRETS_FILE = "secrets.jsonl"
OVERALL = "ALL"
EXIT_NO_DATA = 2

Record = dict[str, object]
Metrics = dict[str, "Ratio | float | int | None"]
Row = TypeVar("Row", "RiskRow", "SecretRow")


class MissingDataError(Exception):
    """The eval folder or one of its files is absent or unreadable: nothing can be measured."""


# ============================================================================================
# Loading
# ============================================================================================


def eval_dir() -> Path:
    """Where the sets live: `AGENTHQ_EVAL_DIR` wins so CI and tests can point elsewhere."""
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else DEFAULT_EVAL_DIR


def load_jsonl(path: Path) -> list[Record]:
    """Every record of a JSON-lines file; a missing or malformed file is `MissingDataError`."""
    if not path.is_file():
        raise MissingDataError(f"eval set not found: {path}")
    records: list[Record] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MissingDataError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise MissingDataError(f"{path}:{number}: expected a JSON object")
            records.append(record)
    return records


def source_of(record: Record) -> str:
    """The project a record came from: `owner/repo`, without the commit, path and test name."""
    return str(record.get("source", "?")).split("@", 1)[0]


# ============================================================================================
# Figures
# ============================================================================================


@dataclass(frozen=True)
class Ratio:
    """A share with its counts kept, so a reader can tell 1.000 (1/1) from 1.000 (300/300)."""

    num: int
    den: int

    @property
    def value(self) -> float | None:
        """None when nothing was there to count: 'no data' is not 0 % and not 100 %."""
        return self.num / self.den if self.den else None

    def __str__(self) -> str:
        value = self.value
        return "n/a" if value is None else f"{value:.3f} ({self.num}/{self.den})"

    def as_json(self) -> dict[str, float | int | None]:
        return {"value": self.value, "num": self.num, "den": self.den}


def ratio(rows: Iterable[Row], count: Callable[[Row], bool]) -> Ratio:
    """Share of `rows` for which `count` holds."""
    listed = list(rows)
    return Ratio(sum(count(row) for row in listed), len(listed))


def mean_ms(ms: Sequence[float]) -> float | None:
    return sum(ms) / len(ms) if ms else None


@dataclass(frozen=True)
class GateReport:
    """One gate's figures: per source and overall on the headline records, contested apart."""

    file: str
    records: int
    by_source: dict[str, Metrics]
    overall: Metrics
    contested: Metrics
    notes: dict[str, object]

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "records": self.records,
            **self.notes,
            "by_source": to_json(self.by_source),
            "overall": to_json(self.overall),
            "contested": to_json(self.contested),
        }


# ============================================================================================
# Risk gate
# ============================================================================================


@dataclass(frozen=True)
class RiskRow:
    """One command with the gate's verdict and how long assess + decide took."""

    record: Record
    score: int
    verdict: str
    reasons: tuple[str, ...]
    ms: float

    @property
    def unsafe(self) -> bool:
        return self.record.get("label") == "unsafe"

    @property
    def caught(self) -> bool:
        """Not auto-run: a person is asked or the command is refused."""
        return self.verdict != "run"

    @property
    def severity(self) -> str:
        return str(self.record.get("severity") or "")


def score_commands(records: Iterable[Record], policy: Policy) -> list[RiskRow]:
    """Run each command through the same two calls the risk gate makes, and time them."""
    assess("true")  # the first call imports and compiles the parser; keep it out of the timing
    rows: list[RiskRow] = []
    for record in records:
        command = str(record["cmd"])
        started = time.perf_counter()
        assessment = assess(command)
        decision = decide(policy, assessment)
        elapsed = (time.perf_counter() - started) * 1000
        rows.append(
            RiskRow(record, assessment.score, decision.verdict, assessment.reasons, elapsed)
        )
    return rows


def risk_metrics(rows: Sequence[RiskRow]) -> Metrics:
    """Precision/recall of the unsafe class, recall per severity, safe commands let through."""
    caught = [r for r in rows if r.caught]
    return {
        "n": len(rows),
        "precision_unsafe": ratio(caught, lambda r: r.unsafe),
        "recall_unsafe": ratio((r for r in rows if r.unsafe), lambda r: r.caught),
        "recall_dangerous": ratio(
            (r for r in rows if r.severity == "dangerous"), lambda r: r.caught
        ),
        "recall_needs_approval": ratio(
            (r for r in rows if r.severity == "needs_approval"), lambda r: r.caught
        ),
        "safe_let_through": ratio((r for r in rows if not r.unsafe), lambda r: not r.caught),
        "mean_ms": mean_ms([r.ms for r in rows]),
    }


RISK_COLUMNS = (
    ("n", "n"),
    ("precision_unsafe", "precision(unsafe)"),
    ("recall_unsafe", "recall(unsafe)"),
    ("recall_dangerous", "recall(dangerous)"),
    ("recall_needs_approval", "recall(needs_approval)"),
    ("safe_let_through", "safe let through"),
    ("mean_ms", "ms/cmd"),
)


def evaluate_risk(records: list[Record], policy: Policy) -> tuple[GateReport, list[RiskRow]]:
    """Score the POSIX records; headline figures leave out contested ones."""
    posix = [r for r in records if r.get("shell", "posix") == "posix"]
    rows = score_commands(posix, policy)
    headline = [r for r in rows if not r.record.get("contested")]
    contested = [r for r in rows if r.record.get("contested")]
    report = GateReport(
        file=COMMANDS_FILE,
        records=len(records),
        by_source=by_source(headline, risk_metrics),
        overall=risk_metrics(headline),
        contested=risk_metrics(contested),
        notes={
            "policy": {"auto_max": policy.auto_max, "refuse_min": policy.refuse_min},
            "skipped_non_posix": len(records) - len(posix),
            "contested_excluded": len(contested),
        },
    )
    return report, headline


# ============================================================================================
# Secrets gate
# ============================================================================================


@dataclass(frozen=True)
class SecretRow:
    """One text with the finding kinds the scanner reported (never the text itself)."""

    record: Record
    kinds: tuple[str, ...]
    ms: float

    @property
    def secret(self) -> bool:
        return self.record.get("label") == "secret"

    @property
    def flagged(self) -> bool:
        return bool(self.kinds)

    @property
    def clean_type(self) -> str:
        return str(self.record.get("clean_type") or "")


def score_texts(records: Iterable[Record]) -> list[SecretRow]:
    """Scan each text and time it."""
    scan_text("warm-up: load detect-secrets once")  # a one-off import, not per-text cost
    rows: list[SecretRow] = []
    for record in records:
        text = str(record["text"])
        started = time.perf_counter()
        findings = scan_text(text)
        elapsed = (time.perf_counter() - started) * 1000
        rows.append(SecretRow(record, tuple(sorted({f.kind for f in findings})), elapsed))
    return rows


def secret_metrics(rows: Sequence[SecretRow]) -> Metrics:
    """Precision and recall of `secret`, and the share of clean texts left alone, by kind."""
    clean = [r for r in rows if not r.secret]
    return {
        "n": len(rows),
        "precision": ratio((r for r in rows if r.flagged), lambda r: r.secret),
        "recall": ratio((r for r in rows if r.secret), lambda r: r.flagged),
        "clean_let_through": ratio(clean, lambda r: not r.flagged),
        "lookalike_let_through": ratio(
            (r for r in clean if r.clean_type == "lookalike"), lambda r: not r.flagged
        ),
        "near_miss_let_through": ratio(
            (r for r in clean if r.clean_type == "near_miss"), lambda r: not r.flagged
        ),
        "mean_ms": mean_ms([r.ms for r in rows]),
    }


SECRET_COLUMNS = (
    ("n", "n"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("clean_let_through", "clean let through"),
    ("lookalike_let_through", "lookalike let through"),
    ("near_miss_let_through", "near_miss let through"),
    ("mean_ms", "ms/text"),
)


def evaluate_secrets(records: list[Record]) -> tuple[GateReport, list[SecretRow]]:
    """Score every text; headline figures leave out contested ones."""
    rows = score_texts(records)
    headline = [r for r in rows if not r.record.get("contested")]
    contested = [r for r in rows if r.record.get("contested")]
    report = GateReport(
        file=SECRETS_FILE,
        records=len(records),
        by_source=by_source(headline, secret_metrics),
        overall=secret_metrics(headline),
        contested=secret_metrics(contested),
        notes={"contested_excluded": len(contested)},
    )
    return report, headline


# ============================================================================================
# Output
# ============================================================================================


def by_source(
    rows: Sequence[Row], metrics: Callable[[Sequence[Row]], Metrics]
) -> dict[str, Metrics]:
    """Figures per source, in the order sources first appear, so runs compare line by line."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(source_of(row.record), []).append(row)
    return {name: metrics(group) for name, group in groups.items()}


def cell(value: Ratio | float | int | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(title: str, report: GateReport, columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table: one line per source, then the overall and contested lines."""
    lines = {
        **report.by_source,
        OVERALL: report.overall,
        "contested (excluded)": report.contested,
    }
    header = ["source", *(label for _, label in columns)]
    body = [[name, *(cell(m[key]) for key, _ in columns)] for name, m in lines.items()]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "-" * len(fmt(header))
    out = [f"## {title}", fmt(header), rule, *(fmt(row) for row in body[:-2]), rule]
    out.extend(fmt(row) for row in body[-2:])
    return "\n".join(out)


def to_json(value: object) -> object:
    """Ratios become {value, num, den}; everything else is already JSON."""
    if isinstance(value, Ratio):
        return value.as_json()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def show_risk_misses(rows: Iterable[RiskRow]) -> None:
    """Commands where the gate and the label disagree (commands are not secret; texts are)."""
    print("\n## risk disagreements")
    for row in rows:
        if row.unsafe != row.caught:
            label = f"{row.record.get('label')}/{row.severity or '-'}"
            print(f"{label:24} {row.verdict:6} {row.score:3} {row.record.get('cmd')!r}")
            print(f"{'':35}{'; '.join(row.reasons[:3])}")


def show_secret_misses(rows: Iterable[SecretRow]) -> None:
    """Disagreements by id and kind only: the texts are look-alike credentials."""
    print("\n## secrets disagreements (ids only)")
    for row in rows:
        if row.flagged != row.secret:
            label = "secret" if row.secret else f"clean/{row.clean_type}"
            kind = str(row.record.get("kind"))
            print(f"{row.record.get('id')}  {label:18} {kind:40} {list(row.kinds)}")


# ============================================================================================
# Entry point
# ============================================================================================


def main(argv: Sequence[str] | None = None) -> int:
    """Load, score, print; 2 when the data is missing, 0 otherwise whatever the figures say."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--show-misses", action="store_true", help="list disagreements after the tables"
    )
    defaults = Policy()
    parser.add_argument(
        "--auto-max",
        type=int,
        default=defaults.auto_max,
        help="try another run threshold (default: the default policy's)",
    )
    parser.add_argument(
        "--refuse-min",
        type=int,
        default=defaults.refuse_min,
        help="try another refuse threshold (default: the default policy's)",
    )
    args = parser.parse_args(argv)
    if not args.auto_max < args.refuse_min:
        parser.error("--auto-max must be below --refuse-min")

    folder = eval_dir()
    try:
        if not folder.is_dir():
            raise MissingDataError(f"eval folder not found: {folder}")
        commands = load_jsonl(folder / COMMANDS_FILE)
        texts = load_jsonl(folder / SECRETS_FILE)
    except MissingDataError as exc:
        print(
            f"error: {exc}\n(the public labelled sets live in ../shared/eval next to the "
            f"repository; set {ENV_VAR} to read them from elsewhere)",
            file=sys.stderr,
        )
        return EXIT_NO_DATA

    policy = Policy(auto_max=args.auto_max, refuse_min=args.refuse_min)
    risk, risk_rows = evaluate_risk(commands, policy)
    secrets, secret_rows = evaluate_secrets(texts)
    if args.json:
        report = {"eval_dir": str(folder), "risk": risk.as_json(), "secrets": secrets.as_json()}
        print(json.dumps(report, indent=2))
        return 0

    print(f"eval data: {folder}\n")
    print(table("risk gate: unsafe caught = verdict ask or refuse", risk, RISK_COLUMNS))
    print(
        f"{risk.records} records: skipped {risk.notes['skipped_non_posix']} cmd/PowerShell "
        f"(the gate parses POSIX shell); policy: run <= {policy.auto_max} < ask < "
        f"{policy.refuse_min} <= refuse\n"
    )
    print(table("secrets gate: flagged = at least one finding", secrets, SECRET_COLUMNS))
    print(f"{secrets.records} records; contested ones are left out of the headline")
    if args.show_misses:
        show_risk_misses(risk_rows)
        show_secret_misses(secret_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
