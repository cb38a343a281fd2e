"""`agenthq telemetry export`, `model train|eval|status|predict`, `report` and
`policy suggest` as a user types them, on a project with real history (two days of runs from
tests/integration/history.py), and their answers to bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.integration import history

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, learning_history: Path) -> Cli:
    return Cli(history.copy_project(learning_history, tmp_path_factory.mktemp("cli") / "project"))


def test_telemetry_export_csv_and_parquet(cli: Cli) -> None:
    out = cli("telemetry", "export", "--csv", "-", check=True).out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(history.WORKERS) * 4 * history.WIDTH
    first = rows[0]
    assert first["plan"] == "nightly"
    assert first["kind"] == "shell"
    assert first["agent_failure_rate"] == "0.5"
    assert first["step_median_s"] == "-1.0"
    deploys = [r for r in rows if r["step"] == "deploy"]
    assert {r["family"] for r in deploys} == {"sh deploy.sh"}
    assert {r["failed"] for r in deploys} == {"0", "1"}
    assert all(r["risk_reasons"] == "runs a shell script" for r in deploys)

    written = cli("telemetry", "export", "--parquet", "history.parquet", check=True)
    assert f"wrote {len(rows)} rows" in written.err
    import pyarrow.parquet

    table = pyarrow.parquet.read_table(cli.project / "history.parquet")
    assert table.num_rows == len(rows)
    assert table.schema.field("parallelism").type == "int64"
    assert table.column("family").to_pylist() == [r["family"] for r in rows]

    recent = cli("telemetry", "export", "--csv", "-", "--since", "9h", check=True).out
    assert 0 < len(list(csv.DictReader(io.StringIO(recent)))) < len(rows)


def test_telemetry_export_refuses_bad_input(cli: Cli) -> None:
    neither = cli("telemetry", "export")
    assert neither.code == 2
    assert "exactly one of --csv" in neither.err
    bad = cli("telemetry", "export", "--csv", "-", "--since", "soon")
    assert bad.code == 2
    assert "--since" in bad.err
    assert "Traceback" not in bad.err
    nowhere = cli("telemetry", "export", "--csv", "no/such/dir/x.csv")
    assert nowhere.code == 2
    assert "does not exist" in nowhere.err


def test_train_eval_status_predict(cli: Cli) -> None:
    trained = cli("model", "train", "--json", check=True).json()
    assert trained["model"]["roc_auc"] >= trained["baseline"]["roc_auc"] + 0.1
    assert Path(trained["path"]).name == "failure.skops"
    assert "the risk gate will use it" in cli("model", "train", check=True).out

    evaluated = cli("model", "eval", "--json", check=True).json()
    for name in ("calibration_png", "importances_png"):
        content = Path(evaluated[name]).read_bytes()
        assert content[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(content) > 10_000
    assert set(evaluated["importances"]) >= {"parallelism", "family", "agent"}
    shown = cli("model", "eval", check=True).out
    assert "baseline" in shown
    assert "ROC-AUC difference: +" in shown

    checks = {f["check"]: f for f in cli("doctor", "--json").json()["findings"]}
    assert checks["model"]["level"] == "ok"
    assert "used by the risk gate" in checks["model"]["message"]
    status = cli("model", "status", "--json", check=True).json()
    assert status["used"] is True
    assert status["kind"] in ("hist_gradient_boosting", "random_forest")

    def predict(*args: str) -> dict[str, object]:
        return cli("model", "predict", *args, "--json", check=True).json()  # type: ignore[no-any-return]

    busy = predict("--command", "sh deploy.sh 7 2", "--agent", "flaky", "--parallelism", "14")
    calm = predict("--command", "sh deploy.sh 7 99", "--agent", "steady", "--parallelism", "14")
    assert busy["family"] == "sh deploy.sh"
    assert busy["model_used_by_risk_gate"] is True
    # A bare command borrows the history of the step that last ran its family for its agent.
    assert busy["history_of"] == "nightly/deploy"
    assert calm["history_of"] == "nightly/ship"
    busy_p, calm_p = float(busy["probability"]), float(calm["probability"])  # type: ignore[arg-type]
    assert busy_p > calm_p + 0.04
    assert busy_p > 2 * calm_p
    assert busy["risk_points"] == round(25 * busy_p)
    unseen = predict("--command", "make build", "--agent", "flaky")
    assert unseen["family"] == "make build"
    assert unseen["history_of"] is None
    said = cli("model", "predict", "--command", "sh deploy.sh 1 2", "--agent", "flaky").out
    assert "judged with the history of step deploy of plan nightly" in said
    said = cli("model", "predict", "--command", "make build").out
    assert "no step has run it or its family for this agent" in said
    step = predict("nightly.yaml", "--step", "deploy", "--parallelism", "14")
    assert step["agent"] == "flaky"
    assert step["history_of"] == "nightly/deploy"
    assert step["family"] == "sh deploy.sh"
    ship = predict("nightly.yaml", "--step", "ship", "--parallelism", "14")
    deploy_p, ship_p = float(step["probability"]), float(ship["probability"])  # type: ignore[arg-type]
    # How sure the model is varies with the generated history, whose failures come from real
    # contention (deploys 0.08 to 0.97 seen): the ranking is what it must get right.
    assert deploy_p > ship_p + 0.04
    assert deploy_p > 2 * ship_p
    assert "predicted failure:" in cli("model", "predict", "nightly.yaml", "--step", "ship").out


def test_predict_and_train_refuse_bad_input(cli: Cli, tmp_path: Path) -> None:
    typo = cli("model", "predict", "nightly.yaml", "--step", "deplo")
    assert typo.code == 2
    assert "did you mean 'deploy'" in typo.err
    both = cli("model", "predict", "nightly.yaml", "--command", "ls")
    assert both.code == 2
    assert "--command" in both.err
    empty = Cli(tmp_path)
    fresh = empty("model", "train")
    assert fresh.code == 1
    assert "at least 200 are needed" in fresh.err
    assert "Traceback" not in fresh.err
    none = empty("model", "eval")
    assert none.code == 1
    assert "no model in" in none.err
    assert "agenthq model train" in none.err
    assert "no model" in empty("model", "status", check=True).out


def test_report_html_csv_and_png(cli: Cli) -> None:
    done = cli(
        "report",
        "--since",
        "3d",
        "--html",
        "report.html",
        "--csv-dir",
        "csv",
        "--png-dir",
        "png",
        check=True,
    )
    assert "wrote report.html" in done.out
    page = (cli.project / "report.html").read_text()
    assert page.count("<svg") == 5
    for name in ("steps", "failure_rate", "duration", "approval_wait", "cost"):
        assert f'download="{name}.csv"' in page
        assert (cli.project / "png" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    steps = list(csv.DictReader(io.StringIO((cli.project / "csv" / "steps.csv").read_text())))
    total = sum(int(r["succeeded"]) + int(r["failed"]) for r in steps)
    assert total == len(history.WORKERS) * 4 * history.WIDTH
    rates = {
        r["agent"]: float(r["failure_rate_pct"])
        for r in csv.DictReader(io.StringIO((cli.project / "csv" / "failure_rate.csv").read_text()))
    }
    assert rates["flaky"] > 3 * rates["steady"]
    assert "Attempts finished per" in cli("report", "--since", "1d", check=True).out
    bad = cli("report", "--since", "-1d")
    assert bad.code == 2
    assert "--since" in bad.err


APPROVALS_PLAN = """\
name: release
steps:
  - id: announce
    run: curl -fsS -X POST https://hooks.invalid/deploy
  - id: prune
    run: docker system prune -f
"""


def test_policy_suggest_from_decisions_and_apply(tmp_path: Path) -> None:
    project = Cli(tmp_path)
    project.write("agenthq.toml", '# our rules\n[policy]\nallow = ["make *"]  # builds are fine\n')
    project.write("release.yaml", APPROVALS_PLAN)
    for _ in range(3):
        assert project("run", "release.yaml", "--no-wait").code == 3
        project("approve", "last", "announce", "--by", "alice", check=True)
        project("reject", "last", "prune", "-m", "not here", "--by", "bob", check=True)
        project("cancel", "last", check=True)
    suggested = project("policy", "suggest", "--json", check=True).json()
    rules = {s["rule"]: s for s in suggested}
    assert rules["allow"]["patterns"] == ["curl -fsS -X POST https://hooks.invalid/deploy"]
    assert rules["allow"]["approved"] == 3
    assert rules["allow"]["rejected"] == 0
    assert rules["deny"]["patterns"] == ["docker system prune -f"]
    assert rules["deny"]["rejected"] == 3

    diff = project("policy", "suggest", check=True)
    assert "+++ agenthq.toml (suggested)" in diff.out
    assert "approved 3x, never rejected" in diff.out
    assert "rejected 3x" in diff.out
    assert "--apply" in diff.err
    assert "curl" not in (tmp_path / "agenthq.toml").read_text()  # a diff only

    project("policy", "suggest", "--apply", check=True)
    text = (tmp_path / "agenthq.toml").read_text()
    assert text.startswith("# our rules")
    assert "# builds are fine" in text
    allowed = project(
        "risk", "curl -fsS -X POST https://hooks.invalid/deploy", "--json", check=True
    ).json()
    assert allowed["verdict"] == "run"
    assert allowed["rule"]
    denied = project("risk", "docker system prune -f", "--json", check=True).json()
    assert denied["verdict"] == "refuse"
    # The people's answers are on the report too: six questions, answered in seconds.
    project("report", "--since", "1d", "--csv-dir", "csv", check=True)
    waits = list(csv.DictReader(io.StringIO((tmp_path / "csv" / "approval_wait.csv").read_text())))
    assert sum(int(r["approvals"]) for r in waits) == 6
    assert all(0 <= float(r["p50_min"]) <= float(r["p95_min"]) < 5 for r in waits)
    again = project("policy", "suggest", check=True)
    assert "nothing to suggest" in again.out
    assert project("policy", "suggest", "--min-approved", "0").code == 2


def test_policy_suggest_with_a_broken_config_says_where(tmp_path: Path) -> None:
    project = Cli(tmp_path)
    project.write("agenthq.toml", "[policy\nallow = 1\n")
    broken = project("policy", "suggest")
    assert broken.code == 2
    assert "agenthq.toml" in broken.err
    assert "Traceback" not in broken.err


BLOCKED = """
import sys
for name in ("sklearn", "skops", "matplotlib", "pyarrow"):
    sys.modules[name] = None  # as if the `learn` extra were not installed
from agenthq.cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (("model", "train"), "pip install 'agenthq[learn]'"),
        (("telemetry", "export", "--parquet", "x.parquet"), "Parquet export needs pyarrow"),
        (("report", "--html", "r.html"), "charts need matplotlib"),
    ],
)
def test_without_the_learn_extra_commands_say_what_to_install(
    cli: Cli, args: tuple[str, ...], needs: str
) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", BLOCKED, *args],
        cwd=cli.project,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert needs in done.stderr
    assert "Traceback" not in done.stderr
    # What needs no extra still works: CSV export and the report's tables.
    assert cli("telemetry", "export", "--csv", "-").code == 0
