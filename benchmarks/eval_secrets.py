"""Measure the secrets scanner against public labelled texts from other projects.

The records live in ../shared/eval/secrets.jsonl, next to (not inside) the repository, because
they come from other projects' test suites (gitleaks, detect-secrets) under their own licences.
Run:

    .venv/bin/python benchmarks/eval_secrets.py [--show-misses] [--file PATH]

A record is "flagged" when `scan_text` returns at least one finding. The headline leaves out
records marked `contested` (their label depends on the rule or the file path); they are
reported on their own line. No text from the set is ever printed: misses are listed by id,
kind and the finding kinds only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from agenthq.gates.secrets_scan import scan_text  # noqa: E402

EVAL_FILE = ROOT.parent / "shared" / "eval" / "secrets.jsonl"


@dataclass(frozen=True)
class Scored:
    record: dict[str, object]
    kinds: tuple[str, ...]
    ms: float

    @property
    def flagged(self) -> bool:
        return bool(self.kinds)

    @property
    def label(self) -> str:
        return str(self.record["label"])

    @property
    def clean_type(self) -> str:
        return str(self.record.get("clean_type") or "")

    @property
    def source(self) -> str:
        return str(self.record["source"]).split("@", 1)[0]


def load(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        sys.exit(f"eval set not found: {path} (expected ../shared/eval next to the repository)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def score_all(records: Iterable[dict[str, object]]) -> list[Scored]:
    scan_text("warm-up: load detect-secrets once")
    scored = []
    for record in records:
        started = time.perf_counter()
        findings = scan_text(str(record["text"]))
        elapsed = (time.perf_counter() - started) * 1000
        scored.append(Scored(record, tuple(sorted({f.kind for f in findings})), elapsed))
    return scored


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.3f} ({numerator}/{denominator})" if denominator else "n/a"


def metrics(rows: list[Scored]) -> dict[str, str]:
    secrets = [r for r in rows if r.label == "secret"]
    lookalikes = [r for r in rows if r.clean_type == "lookalike"]
    near_misses = [r for r in rows if r.clean_type == "near_miss"]
    mean_ms = sum(r.ms for r in rows) / len(rows) if rows else 0.0
    return {
        "n": str(len(rows)),
        "recall(secret)": ratio(sum(r.flagged for r in secrets), len(secrets)),
        "lookalike flagged": ratio(sum(r.flagged for r in lookalikes), len(lookalikes)),
        "near_miss flagged": ratio(sum(r.flagged for r in near_misses), len(near_misses)),
        "mean ms/text": f"{mean_ms:.3f}",
    }


def report(title: str, rows: list[Scored]) -> None:
    print(f"\n## {title}")
    groups: dict[str, list[Scored]] = {}
    for row in rows:
        groups.setdefault(row.source, []).append(row)
    groups["ALL"] = rows
    keys = list(metrics(rows))
    print(f"{'source':24} " + " ".join(f"{k:>20}" for k in keys))
    for name, group in groups.items():
        values = metrics(group)
        print(f"{name:24} " + " ".join(f"{values[k]:>20}" for k in keys))


def show_misses(rows: list[Scored]) -> None:
    """Disagreements by id and kind only: the texts are look-alike credentials."""
    print("\n## disagreements (ids only)")
    for row in rows:
        wrong = row.flagged != (row.label == "secret")
        if wrong:
            label = row.label if row.label == "secret" else f"clean/{row.clean_type}"
            print(f"{row.record['id']}  {label:18} {row.record.get('kind')!s:40} {list(row.kinds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=EVAL_FILE)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    scored = score_all(load(args.file))
    headline = [r for r in scored if not r.record.get("contested")]
    contested = [r for r in scored if r.record.get("contested")]
    report("headline (contested records excluded)", headline)
    report("contested records only", contested)
    if args.show_misses:
        show_misses(headline)


if __name__ == "__main__":
    main()
