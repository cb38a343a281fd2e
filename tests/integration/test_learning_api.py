"""Learning from history over HTTP and in the browser: /api/trends (JSON, CSV, SVG, PNG),
/api/model, /api/runs/{id}/predictions, the Trends page and the run page's predicted failure,
on a real server over two days of real history with a trained model."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import agenthq
from agenthq.ml import model
from tests.integration import history
from tests.server_fixture import LiveServer, serve

pytestmark = pytest.mark.slow

SLOW = """
name: nightly
steps:
  - id: warmup
    run: sleep 30
  - id: deploy
    needs: [warmup]
    agent: flaky
    foreach: [1, 2, 3, 4, 5, 6]
    run: sh deploy.sh {{ item }} 2
  - id: ship
    needs: [warmup]
    agent: steady
    foreach: [1, 2, 3]
    run: sh deploy.sh {{ item }} 99
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, learning_history: Path) -> Iterator[LiveServer]:
    project = history.copy_project(learning_history, tmp_path_factory.mktemp("api") / "project")
    home = project / ".agenthq"
    with agenthq.open_store(f"sqlite:///{home / 'agenthq.db'}") as store:
        model.save(model.train(store.list_telemetry()), home / "models")
    (project / "slow.yaml").write_text(SLOW)
    yield from serve(
        project,
        allow=("sh deploy.sh *", "sh lint.sh *", "sleep *"),
        toml="[breaker]\nfailures = 100000\n",
    )


def test_trends_as_json_csv_svg_and_png(live: LiveServer) -> None:
    with live.client() as http:
        body = http.get("/api/trends", params={"since": "3d"}).json()
        charts = {c["name"]: c for c in body["charts"]}
        assert set(charts) == {"steps", "failure_rate", "duration", "approval_wait", "cost"}
        total = sum(r[1] + r[2] for r in charts["steps"]["rows"])
        assert total == len(history.WORKERS) * 4 * history.WIDTH
        table = http.get("/api/trends/failure_rate.csv", params={"since": "3d"})
        assert table.headers["content-type"].startswith("text/csv")
        assert 'filename="failure_rate.csv"' in table.headers["content-disposition"]
        rates = {
            r["agent"]: float(r["failure_rate_pct"])
            for r in csv.DictReader(io.StringIO(table.text))
        }
        assert rates["flaky"] > 3 * rates["steady"]
        svg = http.get("/api/trends/steps.svg", params={"since": "3d", "theme": "dark"})
        assert svg.headers["content-type"] == "image/svg+xml"
        assert b"Attempts finished per day" in svg.content
        assert b"#171d24" in svg.content  # the dashboard's panel colour
        png = http.get("/api/trends/duration.png", params={"since": "24h"})
        assert png.content[:4] == b"\x89PNG"


def test_trends_refuse_bad_input_with_json_errors(live: LiveServer) -> None:
    with live.client() as http:
        unknown = http.get("/api/trends/latency.csv")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
        assert "the charts are steps" in unknown.json()["error"]["message"]
        for since in ("soon", "365d", "0s"):
            bad = http.get("/api/trends", params={"since": since})
            assert bad.status_code == 422, since
            assert bad.json()["error"]["code"] == "invalid_input"
        assert http.get("/api/trends/steps.gif").status_code == 422
        assert http.get("/api/trends/steps.svg", params={"theme": "neon"}).status_code == 422
        assert http.get("/trends", params={"since": "forever"}).status_code == 422
    assert httpx.get(f"{live.url}/api/trends").status_code == 401
    assert httpx.get(f"{live.url}/api/model").status_code == 401


def test_model_status_and_predictions_of_a_runs_pending_steps(live: LiveServer) -> None:
    with live.client() as http:
        status = http.get("/api/model").json()
        assert status["used"] is True
        assert status["model"]["roc_auc"] > status["model"]["baseline_roc_auc"]
        run = http.post("/api/runs", json={"path": "slow.yaml", "max_workers": 16})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        try:
            found = http.get(f"/api/runs/{run_id}/predictions").json()
            assert found["used"] is True
            predictions = found["predictions"]
            assert set(predictions) >= {f"deploy[{i}]" for i in range(1, 7)}
            # Contended deploys above the steady ships. How far varies with the generated
            # history, whose failures come from real contention (deploys 0.08 to 0.97 seen).
            lowest_deploy = min(predictions[f"deploy[{i}]"] for i in range(1, 7))
            highest_ship = max(predictions[f"ship[{i}]"] for i in range(1, 4))
            assert lowest_deploy > max(2 * highest_ship, highest_ship + 0.04)
            assert "warmup" not in predictions or predictions["warmup"] < 1
            assert http.get("/api/runs/no-such-run/predictions").status_code == 404
        finally:
            http.post(f"/api/runs/{run_id}/cancel")
            live.wait_run(run_id, ("cancelled", "failed", "succeeded"))


def test_trends_page_and_predicted_failure_on_the_run_page(live: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, FLAGS

    with live.client() as http:
        run_id = http.post("/api/runs", json={"path": "slow.yaml", "max_workers": 16}).json()["id"]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{live.url}/login?token={live.token}")
                page.goto(f"{live.url}/trends?since=7d")
                expect(page.locator(".model-card")).to_contain_text("used by the risk gate")
                images = page.locator(".chart img")
                expect(images).to_have_count(5)
                loaded = (
                    "() => [...document.querySelectorAll('.chart img')].map(i => i.naturalWidth)"
                )
                for _ in range(100):  # (wait_for_function evaluates a string: the CSP forbids it)
                    widths = page.evaluate(loaded)
                    if all(w > 0 for w in widths):
                        break
                    page.wait_for_timeout(100)
                assert len(widths) == 5
                assert all(w > 0 for w in widths), widths
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "trends.png"), full_page=True)
                page.locator('a.button[href="/trends?since=24h"]').click()
                expect(page.locator("h1")).to_contain_text("the last 24h")

                page.goto(f"{live.url}/runs/{run_id}")
                # Each pending step shows its predicted failure, classed by how high it is
                # (high ≥ 50 %, mid ≥ 20 %); the contended deploy above the steady ship.
                deploy = page.locator('[data-prediction-of="deploy[1]"]')
                ship = page.locator('[data-prediction-of="ship[1]"]')
                expect(deploy).to_have_class(re.compile(r"^risk (high|mid|low)$"))
                expect(ship).to_have_class("risk low")
                shown = [int(x.inner_text().rstrip("%")) for x in (deploy, ship)]
                assert shown[0] > shown[1], shown
                page.screenshot(path=str(ARTIFACTS / "run-predictions.png"), full_page=True)
            finally:
                browser.close()
    finally:
        with live.client() as http:
            http.post(f"/api/runs/{run_id}/cancel")
        live.wait_run(run_id, ("cancelled", "failed", "succeeded"))
