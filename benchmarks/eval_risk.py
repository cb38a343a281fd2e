"""Measure the command-risk gate against public labelled commands from other projects.

The records live in ../shared/eval/command_safety.jsonl, next to (not inside) the repository,
because they come from other projects' test suites under their own licences. Run:

    .venv/bin/python benchmarks/eval_risk.py [--show-misses] [--auto-max 20] [--refuse-min 80]

A record counts as "flagged unsafe" when the verdict is `ask` or `refuse`. Only POSIX records are
scored: this gate parses bash, so cmd.exe and PowerShell records are skipped (and counted).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from agenthq.gates.risk import assess, verdict_for  # noqa: E402

EVAL_FILE = ROOT.parent / "shared" / "eval" / "command_safety.jsonl"


@dataclass(frozen=True)
class Scored:
    record: dict[str, object]
    score: int
    verdict: str
    reasons: tuple[str, ...]
    ms: float

    @property
    def flagged(self) -> bool:
        return self.verdict != "run"

    @property
    def unsafe(self) -> bool:
        return self.record["label"] == "unsafe"

    @property
    def source(self) -> str:
        return str(self.record["source"]).split("@", 1)[0]


def load(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        sys.exit(f"eval set not found: {path} (expected ../shared/eval next to the repository)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def score_all(records: Iterable[dict[str, object]], auto_max: int, refuse_min: int) -> list[Scored]:
    scored = []
    for record in records:
        started = time.perf_counter()
        result = assess(str(record["cmd"]))
        elapsed = (time.perf_counter() - started) * 1000
        verdict = verdict_for(result.score, auto_max=auto_max, refuse_min=refuse_min)
        scored.append(Scored(record, result.score, verdict, result.reasons, elapsed))
    return scored


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.3f} ({numerator}/{denominator})" if denominator else "n/a"


def metrics(rows: list[Scored]) -> dict[str, str]:
    true_pos = sum(r.unsafe and r.flagged for r in rows)
    false_pos = sum(not r.unsafe and r.flagged for r in rows)
    unsafe = sum(r.unsafe for r in rows)
    dangerous = [r for r in rows if r.record.get("severity") == "dangerous"]
    approval = [r for r in rows if r.record.get("severity") == "needs_approval"]
    safe = [r for r in rows if not r.unsafe]
    return {
        "n": str(len(rows)),
        "precision(unsafe)": ratio(true_pos, true_pos + false_pos),
        "recall(unsafe)": ratio(true_pos, unsafe),
        "recall(dangerous)": ratio(sum(r.flagged for r in dangerous), len(dangerous)),
        "recall(needs_approval)": ratio(sum(r.flagged for r in approval), len(approval)),
        "safe let through": ratio(sum(not r.flagged for r in safe), len(safe)),
    }


def report(title: str, rows: list[Scored]) -> None:
    print(f"\n## {title}")
    groups: dict[str, list[Scored]] = {}
    for row in rows:
        groups.setdefault(row.source, []).append(row)
    groups["ALL"] = rows
    keys = list(metrics(rows))
    print(f"{'source':40} " + " ".join(f"{k:>22}" for k in keys))
    for name, group in groups.items():
        values = metrics(group)
        print(f"{name:40} " + " ".join(f"{values[k]:>22}" for k in keys))


def show_misses(rows: list[Scored]) -> None:
    print("\n## disagreements")
    for row in rows:
        if row.unsafe != row.flagged:
            label = f"{row.record['label']}/{row.record.get('severity', '-')}"
            contested = " contested" if row.record.get("contested") else ""
            print(f"{label:22}{contested} {row.verdict:6} {row.score:3} {row.record['cmd']!r}")
            print(f"{'':30}{'; '.join(row.reasons[:3])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=EVAL_FILE)
    parser.add_argument("--auto-max", type=int, default=20)
    parser.add_argument("--refuse-min", type=int, default=80)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    records = load(args.file)
    posix = [r for r in records if r.get("shell", "posix") == "posix"]
    skipped = len(records) - len(posix)
    print(f"{len(records)} records; scoring {len(posix)} POSIX, skipped {skipped} cmd/PowerShell")
    assess("warm up the parser")
    scored = score_all(posix, args.auto_max, args.refuse_min)
    report("all POSIX records (with contested)", scored)
    report("non-contested POSIX records", [r for r in scored if not r.record.get("contested")])
    times = [r.ms for r in scored]
    print(
        f"\nms per command: mean {statistics.mean(times):.3f}, "
        f"median {statistics.median(times):.3f}"
    )
    print(f"thresholds: run <= {args.auto_max} < ask < {args.refuse_min} <= refuse")
    if args.show_misses:
        show_misses(scored)


if __name__ == "__main__":
    main()
