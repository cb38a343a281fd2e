"""A coding agent's worktree through a live server: the step detail names it, the diff of a
`merge: review` step is served with credential lines withheld, and the dashboard shows it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.server_fixture import LiveServer, serve

PLAN = """
name: propose
steps:
  - id: edit
    workspace: worktree
    merge: review
    run: printf 'token = "ghp_R8sK2mQ9xT4vL7nB3cW6yZ1aD5fH0jP2uE8i"\\nplain line\\n' > proposal.txt
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    project = tmp_path_factory.mktemp("project")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (project / "README").write_text("hi\n")
    (project / ".gitignore").write_text(".agenthq/\nagenthq.toml\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    yield from serve(project, allow=("printf *",))


def test_a_review_worktree_s_diff_is_served_without_secrets(live: LiveServer) -> None:
    with live.client() as http:
        started = http.post("/api/runs", json={"plan": PLAN})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        final = live.wait_run(run_id, ("succeeded", "failed"))
        assert final["state"] == "succeeded", final
        step = http.get(f"/api/runs/{run_id}/steps/edit").json()
        assert step["worktree"]["state"] == "review"
        assert step["worktree"]["merge"] == "review"
        diff = http.get(f"/api/runs/{run_id}/steps/edit/diff").json()
        assert diff["state"] == "review"
        assert "+plain line" in diff["diff"]
        assert "ghp_" not in diff["diff"]
        assert "[line withheld: possible" in diff["diff"]
        missing = http.get(f"/api/runs/{run_id}/steps/nope/diff")
        assert missing.status_code == 404
    assert not (live.project / "proposal.txt").exists()  # kept for review, not merged


def test_the_dashboard_shows_the_diff_and_the_alerts_page(live: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, FLAGS

    assert CHROMIUM is not None, "Chromium is not installed; .ci/run installs Debian's chromium"
    with live.client() as http:
        run_id = http.post("/api/runs", json={"plan": PLAN}).json()["id"]
    live.wait_run(run_id, ("succeeded",))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(f"{live.url}/login?token={live.token}")
        page.goto(f"{live.url}/runs/{run_id}")
        page.locator('g.node[data-step="edit"]').click()
        diff = page.locator("pre.diff")
        expect(diff).to_contain_text("+plain line")
        expect(diff).not_to_contain_text("ghp_")
        assert page.locator("pre.diff span.add").count() >= 2
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "run-diff.png"), full_page=True)
        page.goto(f"{live.url}/alerts")
        expect(page.locator("h1")).to_have_text("Alerts")
        page.screenshot(path=str(ARTIFACTS / "alerts.png"), full_page=True)
        browser.close()
