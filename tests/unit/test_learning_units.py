"""The pure pieces of learning from history, and the telemetry table on both backends:
command families, leakage-free history features, trends arithmetic, chart escaping, policy
suggestions and the `[model]` settings."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from agenthq.engine.gating import gate_config_from_tables
from agenthq.errors import ConfigError
from agenthq.gates.policy import Policy
from agenthq.gates.suggest import suggest
from agenthq.ml.features import Candidate, History, command_family, derive
from agenthq.ml.trends import Chart, trends
from agenthq.store.api import (
    ApprovalKind,
    ApprovalRecord,
    ApprovalState,
    Batch,
    TelemetryRow,
)
from agenthq.store.sql import SqlStore


@pytest.mark.parametrize(
    ("command", "family"),
    [
        ("git push origin main --force", "git push"),
        ("  pytest -q tests/unit", "pytest"),
        ("python3 -m pytest -x", "python pytest"),
        ("python3.12 tools/migrate.py --dry-run", "python migrate.py"),
        ("sh deploy.sh 3 2", "sh deploy.sh"),
        ("bash -c 'echo hi'", "bash"),
        ("FOO=1 BAR=2 make build", "make build"),
        ("sudo -n apt-get install -y jq", "apt-get install"),
        ("timeout 30 npm test && echo ok", "npm test"),
        ("ls -la | wc -l", "ls"),
        ("/usr/bin/rsync -a src/ dst/", "rsync"),
        ("cat ./README.md", "cat"),
        ("docker compose up -d", "docker compose"),
        ("echo 'unclosed", "echo"),
        ("", None),
        (None, None),
    ],
)
def test_command_family(command: str | None, family: str | None) -> None:
    assert command_family(command) == family


def row(
    n: int,
    *,
    agent: str | None = "a",
    start: float,
    end: float,
    outcome: str = "succeeded",
    step: str = "s",
    cost: float | None = None,
) -> TelemetryRow:
    return TelemetryRow(
        run_id="r1",
        step_id=f"{step}[{n}]",
        attempt=1,
        plan="p",
        step=step,
        agent=agent,
        kind="shell",
        family="make build",
        risk_score=10.0,
        risk_reasons=("writes files",),
        predicted_failure=None,
        fan_in=1,
        parallelism=4,
        started_at=start,
        finished_at=end,
        outcome=outcome,
        failure_class="execution" if outcome == "failed" else None,
        cost_usd=cost,
    )


def test_derive_never_counts_an_attempt_that_had_not_finished() -> None:
    rows = [
        row(1, start=0, end=100, outcome="failed"),  # still running when #2 starts
        row(2, start=50, end=60, outcome="failed"),
        row(3, start=70, end=80),  # #2 finished before: counted; #1 not yet
        row(4, start=200, end=210),  # both failures finished
        row(5, start=100_000, end=100_010),  # a day later: the window forgot them
    ]
    features = [f for _, f in derive(rows)]
    assert [f["agent_failures_24h"] for f in features] == [0, 0, 1, 2, 0]
    assert [f["step_failures_24h"] for f in features] == [0, 0, 1, 2, 0]
    # The failure rate so far never forgets (Laplace: one success and one failure assumed).
    assert features[3]["agent_failure_rate"] == pytest.approx((2 + 1) / (3 + 2))
    assert features[4]["step_median_s"] == pytest.approx(10.0)  # successful #3 and #4
    assert features[0]["step_median_s"] == -1.0


def test_a_step_without_history_borrows_the_last_one_of_its_family_and_agent() -> None:
    history = History()

    def candidate(
        step: str, agent: str | None = "a", family: str | None = "make build"
    ) -> Candidate:
        return Candidate("p", step, agent, "shell", family, None, 0, 1, 0, 1, 10.0)

    assert history.history_of(candidate("new")) is None
    history.add(row(1, start=0, end=5, step="build"))  # 5 s
    history.add(row(2, start=1, end=6, step="rebuild", outcome="failed"))
    history.add(row(3, start=2, end=7, step="other", agent=None))
    history.add(row(4, start=3, end=8, step="late", outcome="cancelled"))  # taught nothing
    assert history.history_of(candidate("new")) == ("p", "rebuild")
    borrowed = history.features(candidate("new"))
    assert borrowed["step_failures_24h"] == 1
    assert borrowed["step_median_s"] == -1.0  # rebuild never succeeded
    # A step with a finished attempt of its own is judged on its own history.
    assert history.history_of(candidate("build")) == ("p", "build")
    own = history.features(candidate("build"))
    assert (own["step_failures_24h"], own["step_median_s"]) == (0, 5.0)
    assert history.history_of(candidate("new", agent=None)) == ("p", "other")
    assert history.history_of(candidate("late")) == ("p", "rebuild")
    for stranger in (candidate("new", agent="b"), candidate("new", family="make test")):
        assert history.history_of(stranger) is None
        assert history.features(stranger)["step_median_s"] == -1.0
    assert history.history_of(candidate("new", family=None)) is None


def test_training_rows_borrow_the_same_way() -> None:
    rows = [
        row(1, start=0, end=10, step="deploy", outcome="failed"),
        row(2, start=20, end=30, step="release"),  # a new step of the same family and agent
        row(3, start=40, end=45, step="release"),
    ]
    features = [f for _, f in derive(rows)]
    assert features[1]["step_failures_24h"] == 1  # deploy's, as a live prediction would see
    assert features[2]["step_failures_24h"] == 0  # its own, once it has one
    assert features[2]["step_median_s"] == 10.0


def test_cancelled_attempts_teach_nothing() -> None:
    history = History()
    history.add(row(1, start=0, end=1, outcome="cancelled"))
    assert history.agent_failure_rate("a") == 0.5
    candidate = Candidate("p", "s", None, "shell", None, None, 0, 1, 0, 1, 10.0)
    features = history.features(candidate)
    assert features["agent"] == "-"
    assert features["family"] == "-"
    assert features["risk_score"] == -1.0


def test_telemetry_rows_round_trip_in_start_order(store: SqlStore) -> None:
    rows = [
        row(2, start=20, end=25, outcome="failed", cost=0.25),
        row(1, start=10, end=12, agent=None),
    ]
    store.apply(Batch(at=30.0, telemetry=rows))
    stored = store.list_telemetry()
    assert [r.step_id for r in stored] == ["s[1]", "s[2]"]
    assert stored[1] == rows[0]
    assert stored[0].agent is None
    assert [r.step_id for r in store.list_telemetry(started_from=15)] == ["s[2]"]
    assert [r.step_id for r in store.list_telemetry(finished_after=12)] == ["s[2]"]
    assert store.list_telemetry(agent="a") == [rows[0]]


def approval(
    n: int, command: str, state: ApprovalState, *, by: str = "alice", at: float = 0.0
) -> ApprovalRecord:
    return ApprovalRecord(
        id=n,
        run_id="r",
        step_id=f"s{n}",
        attempt=1,
        kind=ApprovalKind.GATE,
        state=state,
        requested_at=at,
        expires_at=at + 3600,
        warn_at=None,
        escalate_at=None,
        escalate_to=None,
        warned=False,
        escalated=False,
        on_timeout="reject",
        command=command,
        score=50.0,
        reasons=(),
        request={},
        decided_at=at + 60 if state is not ApprovalState.PENDING else None,
        decided_by=by,
        note=None,
        extend_usd=None,
    )


A, R, P = ApprovalState.APPROVED, ApprovalState.REJECTED, ApprovalState.PENDING


def test_suggestions_need_unanimous_people_and_exact_patterns() -> None:
    records: Sequence[ApprovalRecord] = [
        *(approval(i, "make  deploy ENV=prod", A) for i in range(3)),  # spacing differs: same
        approval(3, "make deploy ENV=prod", A),
        *(approval(10 + i, "git push origin main", A) for i in range(3)),
        approval(13, "git push origin main", R),  # one rejection: no allow rule
        *(approval(20 + i, "cd build && rm -rf out", R) for i in range(2)),
        approval(22, "cd build && make", A),
        *(approval(30 + i, "rm -rf *.log", A) for i in range(3)),  # a glob: escaped
        *(approval(40 + i, "rm -rf /tmp/x", R, by="timeout") for i in range(5)),  # no person
        approval(50, "ls $HOME", A),
        approval(51, "ls $HOME", A),
        approval(52, "ls $HOME", A),  # run-time expansion: no exact pattern
        approval(60, "make deploy ENV=prod", P),
    ]
    found = {s.command: s for s in suggest(records, Policy())}
    assert set(found) == {"make deploy ENV=prod", "cd build && rm -rf out", "rm -rf *.log"}
    deploy = found["make deploy ENV=prod"]
    assert (deploy.rule, deploy.patterns, deploy.approved) == (
        "allow",
        ("make deploy ENV=prod",),
        4,
    )
    denied = found["cd build && rm -rf out"]
    # `cd build` was also approved elsewhere: only the part people always refused is denied.
    assert (denied.rule, denied.patterns, denied.rejected) == ("deny", ("rm -rf out",), 2)
    assert found["rm -rf *.log"].patterns == ("rm -rf '[*].log'",)
    assert deploy.note == "approved 4x, never rejected"
    assert denied.note == "rejected 2x, never approved: cd build && rm -rf out"


def test_suggestions_skip_rules_the_policy_has_and_respect_thresholds() -> None:
    records = [approval(i, "make deploy", A) for i in range(3)]
    assert suggest(records, Policy(allow=("make deploy",))) == []
    assert suggest(records, Policy(), min_approved=4) == []
    assert len(suggest(records, Policy(), min_approved=3)) == 1


def test_suggested_patterns_match_what_people_approved_and_nothing_more() -> None:
    from agenthq.gates.policy import decide
    from agenthq.gates.risk import assess

    records = [approval(i, "rm -rf *.log", A) for i in range(3)]
    (found,) = suggest(records, Policy())
    policy = Policy(allow=found.patterns, auto_max=0)
    assert decide(policy, assess("rm -rf *.log")).matched_rule == found.patterns[0]
    assert decide(policy, assess("rm -rf a.log")).matched_rule is None


def test_trends_from_telemetry_and_approvals(store: SqlStore) -> None:
    hour = 3600.0
    now = 100 * hour + 1800
    rows = [
        row(1, start=98 * hour, end=98 * hour + 10, cost=1.5),
        row(2, start=98 * hour + 5, end=98 * hour + 25, outcome="failed", cost=0.5),
        row(3, start=99 * hour, end=99 * hour + 30, agent="b"),
        row(4, start=50 * hour, end=50 * hour + 1),  # before the window
    ]
    store.apply(Batch(at=now, telemetry=rows))
    charts = {c.name: c for c in trends(store, 6 * hour, now=now)}
    steps = charts["steps"]
    assert steps.kind == "line"
    assert steps.columns == ("time", "succeeded", "failed")
    assert [tuple(r[1:]) for r in steps.rows if r[1] or r[2]] == [(1, 1), (1, 0)]
    assert len(steps.rows) == 7  # every hour of the window, empty ones too
    assert {r[0]: r[1] for r in charts["failure_rate"].rows} == {"a": 50.0, "b": 0.0}
    duration = charts["duration"].rows
    assert [r[1:] for r in duration] == [(10.0, 20.0), (30.0, 30.0)]
    assert sum(float(r[1]) for r in charts["cost"].rows) == pytest.approx(2.0)
    assert charts["approval_wait"].empty
    exported = list(csv.reader(io.StringIO(charts["failure_rate"].csv())))
    assert exported[0] == ["agent", "failure_rate_pct", "attempts", "failed"]
    # Longer windows count by day.
    assert trends(store, 7 * 24 * hour, now=now)[0].title == "Attempts finished per day"


def test_report_html_keeps_labels_as_text() -> None:
    from agenthq.ml.report import render_html

    evil = "<script>alert(1)</script>"
    chart = Chart(
        "failure_rate",
        "Failure rate by agent",
        "bar",
        "agent",
        "%",
        ("agent", "failure_rate_pct", "attempts", "failed"),
        [(evil, 50.0, 2, 1)],
    )
    page = render_html([chart], since="7d", now=0.0)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_draw_refuses_unknown_formats_and_themes() -> None:
    from agenthq.errors import LearningError
    from agenthq.ml.charts import draw

    chart = Chart("cost", "Cost per day", "line", "day", "USD", ("time", "cost_usd"), [])
    assert draw(chart, "svg").lstrip().startswith(b"<?xml")
    assert draw(chart, "png", theme="dark")[:4] == b"\x89PNG"
    with pytest.raises(LearningError, match="unknown chart format"):
        draw(chart, "gif")
    with pytest.raises(LearningError, match="unknown chart theme"):
        draw(chart, "svg", theme="neon")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"weight": 2}, "model.weight must be a number from 0 to 1"),
        ({"weight": True}, "model.weight"),
        ({"max_age_days": 0}, "model.max_age_days must be a number of days > 0"),
        ({"enabled": "yes"}, "model.enabled must be true or false"),
        ({"wieght": 0.1}, "unknown key model.wieght"),
    ],
)
def test_model_settings_are_validated(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gate_config_from_tables({"model": table}, "agenthq.toml")


def test_model_settings_defaults_and_values(tmp_path: Path) -> None:
    assert gate_config_from_tables({}, "x").model.weight == 0.25
    settings = gate_config_from_tables(
        {"model": {"weight": 0.5, "max_age_days": 7, "enabled": False}}, "x"
    ).model
    assert (settings.weight, settings.max_age_days, settings.enabled) == (0.5, 7.0, False)


def test_doctor_says_whether_the_model_is_used(tmp_path: Path) -> None:
    from agenthq.engine.doctor import check_model
    from agenthq.ml.model import Metrics, ModelMeta, write_meta
    from agenthq.ml.predictor import ModelSettings

    settings = ModelSettings(max_age_days=30)
    assert check_model(tmp_path, settings, 0.0) == []  # no model: nothing to say
    good = Metrics(0.9, 0.6, 0.5, 0.1, 0.5, 100, 20)
    base = Metrics(0.7, 0.3, 0.2, 0.2, 0.4, 100, 20)
    meta = ModelMeta(
        kind="hist_gradient_boosting",
        created_at=1000.0,
        data_from=0.0,
        data_to=500.0,
        test_from=600.0,
        train_rows=400,
        threshold=0.5,
        model=good,
        baseline=base,
        selection={"hist_gradient_boosting": 0.9},
        versions={},
    )
    write_meta(meta, tmp_path)
    (used,) = check_model(tmp_path, settings, 2000.0)
    assert used.level == "ok"
    assert "used by the risk gate" in used.message
    (stale,) = check_model(tmp_path, settings, 1000.0 + 31 * 86400)
    assert stale.level == "degraded"
    assert "older than max_age_days=30" in stale.message
    write_meta(ModelMeta(**{**meta.__dict__, "model": base, "baseline": good}), tmp_path)
    (worse,) = check_model(tmp_path, settings, 2000.0)
    assert worse.level == "ok"
    assert "does not beat the baseline" in worse.message
    assert check_model(tmp_path, ModelSettings(enabled=False), 2000.0) == []
    (tmp_path / "failure.json").write_text("{not json")
    (broken,) = check_model(tmp_path, settings, 2000.0)
    assert broken.level == "degraded"
    assert "retrain" in broken.message


def test_a_step_as_the_model_sees_it_before_it_runs() -> None:
    from agenthq.engine.foresight import as_written
    from agenthq.graph import compile_plan
    from agenthq.spec.load import load_plan_text

    loaded = load_plan_text(
        "name: p\nsteps:\n"
        "  - {id: sh, run: 'git push origin {{ params.branch }}'}\n"
        "  - {id: py, uses: 'agenthq.builtin:echo', with: {text: hi}}\n"
        "  - {id: nap, wait: 1h}\n"
        "params: {branch: {default: main}}\n"
    )
    nodes = compile_plan(loaded.spec, params={"branch": "main"}).nodes
    assert as_written(nodes["sh"]) == ("shell", "git push", "git push origin {{ params.branch }}")
    # A Python step is never scored as if its callable were a shell command.
    assert as_written(nodes["py"]) == ("python", "agenthq.builtin:echo", None)
    assert as_written(nodes["nap"]) is None
