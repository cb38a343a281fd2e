"""The long-running API through a real `agenthq serve`: a rollback started over HTTP is
executed by the server and linked both ways; schedules and triggers are listed with their
history, paused and resumed; bad ids get JSON errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_fixture import LiveServer, serve

RELEASE = """
name: release
steps:
  - id: tag
    run: touch tagged
    compensate: touch untagged
"""

NIGHTLY = """
name: nightly
schedule: {cron: "0 3 * * *", tz: America/New_York}
steps:
  - id: sweep
    run: touch swept
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("project")
    yield from serve(project)


def agenthq(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthq", *args],
        cwd=live.project,
        env={"AGENTHQ_HOME": str(live.project / ".agenthq"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )


def test_rollback_over_http_runs_in_the_server(live: LiveServer) -> None:
    with live.client() as http:
        started = http.post("/api/runs", json={"plan": RELEASE})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert live.wait_run(run_id, ("succeeded",))["state"] == "succeeded"
        answer = http.post(f"/api/runs/{run_id}/rollback")
        assert answer.status_code == 201, answer.text
        rollback = answer.json()
        assert rollback["origin"] == {"kind": "rollback", "run": run_id}
        assert live.wait_run(rollback["id"], ("succeeded", "failed"))["state"] == "succeeded"
        assert (Path(live.project) / "untagged").exists()
        detail = http.get(f"/api/runs/{run_id}").json()
        assert [r["id"] for r in detail["started_runs"]] == [rollback["id"]]
        again = http.post(f"/api/runs/{run_id}/rollback")
        assert again.status_code == 409
        assert "no succeeded step with a `compensate`" in again.json()["error"]["message"]
        page = http.get(f"/runs/{run_id}").text
        assert f"/runs/{rollback['id']}" in page
        assert "rolled back by" in page


def test_schedules_are_listed_paused_and_resumed(live: LiveServer) -> None:
    (Path(live.project) / "nightly.yaml").write_text(NIGHTLY)
    agenthq(live, "schedule", "add", "nightly.yaml")
    with live.client() as http:
        (listed,) = http.get("/api/automations", params={"kind": "schedule"}).json()["automations"]
        assert listed["id"] == "nightly"
        assert listed["settings"]["tz"] == "America/New_York"
        assert listed["last"] is None
        assert http.post("/api/automations/nightly/pause").json()["paused"] is True
        resumed = http.post("/api/automations/nightly/resume").json()
        assert resumed["paused"] is False
        assert resumed["next_at"] >= listed["next_at"]
        assert http.get("/api/automations/nightly/fires").json() == {"fires": []}
        missing = http.get("/api/automations/nope/fires")
        assert missing.status_code == 404
        assert "no schedule or trigger 'nope'" in missing.json()["error"]["message"]
        assert http.get("/api/automations", params={"kind": "cron"}).status_code == 422


def test_a_due_schedule_runs_inside_serve(live: LiveServer) -> None:
    import time

    (Path(live.project) / "nightly.yaml").write_text(NIGHTLY)
    agenthq(live, "schedule", "add", "nightly.yaml", "--name", "soon")
    # Make its next tick now, as if the clock had reached 03:00 in New York.
    live.ctx.store.set_automation("soon", next_at=time.time() - 1)
    deadline = time.monotonic() + 30
    fires: list[dict[str, object]] = []
    with live.client() as http:
        while time.monotonic() < deadline and not fires:
            fires = http.get("/api/automations/soon/fires").json()["fires"]
            time.sleep(0.1)
        assert fires, "serve did not fire the due schedule"
        (fire,) = fires
        assert fire["outcome"] == "started"
        run = live.wait_run(str(fire["run_id"]), ("succeeded", "failed"))
        assert run["state"] == "succeeded"
        assert run["origin"]["kind"] == "schedule"
        assert run["origin"]["schedule"] == "soon"
        # Moved on to the next 03:00 in New York (within a day, whatever the hour now), and a
        # second look fires nothing more.
        from datetime import datetime
        from zoneinfo import ZoneInfo

        (soon,) = [
            a for a in http.get("/api/automations").json()["automations"] if a["id"] == "soon"
        ]
        assert time.time() < soon["next_at"] <= time.time() + 86400
        local = datetime.fromtimestamp(soon["next_at"], ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (3, 0)
        time.sleep(1.5)
        assert len(http.get("/api/automations/soon/fires").json()["fires"]) == 1


def test_roll_back_by_clicking(live: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, FLAGS

    with live.client() as http:
        run_id = http.post("/api/runs", json={"plan": RELEASE.replace("release", "shipit")}).json()[
            "id"
        ]
        assert live.wait_run(run_id, ("succeeded",))["state"] == "succeeded"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{live.url}/login?token={live.token}")
            page.goto(f"{live.url}/runs/{run_id}")
            page.once("dialog", lambda dialog: dialog.accept())
            page.locator('button[data-action="rollback"]').click()
            expect(page.locator("h1")).to_contain_text("shipit-rollback")
            expect(page.locator("p.origin")).to_contain_text(f"rollback of {run_id}")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "rollback.png"))
            # The rolled-back run has nothing left to undo: no button any more.
            page.goto(f"{live.url}/runs/{run_id}")
            expect(page.locator("p.origin")).to_contain_text("rolled back by")
            expect(page.locator('button[data-action="rollback"]')).to_have_count(0)
        finally:
            browser.close()


def test_schedules_page_lists_them_and_pauses_by_clicking(live: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, FLAGS

    (Path(live.project) / "weekly.yaml").write_text(
        NIGHTLY.replace("name: nightly", "name: weekly").replace("0 3 * * *", "0 6 * * 1")
    )
    agenthq(live, "schedule", "add", "weekly.yaml", "--tz", "Europe/Berlin")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{live.url}/login?token={live.token}")
            page.goto(f"{live.url}/schedules")
            row = page.locator('tr[data-automation="weekly"]')
            expect(row).to_contain_text("cron '0 6 * * 1' Europe/Berlin")
            expect(row).to_contain_text("+01:00")  # the next tick, in its own zone (winter)
            row.locator('button[data-automation-action="pause"]').click()
            expect(row.locator(".s-paused")).to_have_count(1)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "schedules.png"), full_page=True)
            row.locator('button[data-automation-action="resume"]').click()
            expect(row.locator(".s-paused")).to_have_count(0)
        finally:
            browser.close()
