"""The dashboard in headless Chromium (Debian's, driven by Playwright) against a real
`agenthq serve` process: log in with the printed URL, watch a node turn green live, approve a
waiting step by clicking, acknowledge and resolve an alert by clicking, and keep screenshots
of every page as test artifacts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.server_fixture import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SLOW = """
name: watch-me
steps:
  - id: warmup
    run: sleep 1.5
  - id: build
    needs: [warmup]
    run: echo built
  - id: test
    needs: [warmup]
    run: echo tested
  - id: ship
    needs: [build, test]
    run: echo shipped
"""

GATED = """
name: needs-a-person
steps:
  - id: migrate
    risk: approval_required
    run: echo migrating the database
  - id: verify
    needs: [migrate]
    run: echo verified
"""


class Served:
    def __init__(self, url: str, login_url: str, token: str) -> None:
        self.url = url
        self.login_url = login_url
        self.token = token

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def start(self, plan: str) -> dict[str, Any]:
        with self.api() as http:
            response = http.post("/api/runs", json={"plan": plan})
            assert response.status_code == 201, response.text
            return dict(response.json())

    def wait(self, run_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.api() as http:
            while time.monotonic() < deadline:
                run = http.get(f"/api/runs/{run_id}").json()
                if run["state"] == state:
                    return dict(run)
                time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not reach {state}: {run}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = tmp_path_factory.mktemp("dash")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHQ_")}
    env["AGENTHQ_HOME"] = str(project / ".agenthq")
    process = subprocess.Popen(
        [sys.executable, "-m", "agenthq", "serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    login_url = ""
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not login_url:
        line = process.stderr.readline()
        match = re.search(r"(http://\S+/login\?token=\S+)", line)
        if match:
            login_url = match.group(1)
    assert login_url, "serve did not print its login URL"
    token = login_url.split("token=", 1)[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", login_url, token)
    finally:
        process.terminate()
        process.communicate(timeout=20)  # also closes the pipes


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def logged_in(browser: Browser, served: Served, width: int = 1280, height: int = 800) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(served.login_url)
    expect(page.locator("header.top")).to_be_visible()
    return page


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000
    return path


def test_login_page_refuses_a_wrong_token(browser: Browser, served: Served) -> None:
    page = browser.new_page()
    page.goto(f"{served.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("not right")
    shot(page, "login")
    page.fill("input[name=token]", served.token)
    page.click("button[type=submit]")
    expect(page.locator("h2", has_text="Runs")).to_be_visible()


def test_a_node_turns_green_live(browser: Browser, served: Served) -> None:
    run = served.start(SLOW)
    page = logged_in(browser, served)
    page.goto(f"{served.url}/runs/{run['id']}")
    ship = page.locator('g.node[data-step="ship"]')
    expect(ship).not_to_have_class(re.compile(r"s-succeeded"))  # not yet: it is live
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=10_000)
    expect(ship).to_have_class(re.compile(r"s-succeeded"), timeout=20_000)
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=10_000)
    page.locator('g.node[data-step="build"]').click()
    expect(page.locator("#step-title")).to_have_text("build")
    expect(page.locator("#step-log")).to_contain_text("built", timeout=10_000)
    shot(page, "run")
    page.goto(served.url + "/")
    expect(page.locator("table.runs")).to_contain_text("watch-me")
    shot(page, "overview")


def test_approve_a_waiting_step_by_clicking(browser: Browser, served: Served) -> None:
    run = served.start(GATED)
    served.wait(run["id"], "awaiting_approval")
    page = logged_in(browser, served)
    page.goto(served.url + "/approvals")
    card = page.locator(".approval", has_text="migrate")
    expect(card).to_contain_text("echo migrating the database")
    expect(card).to_contain_text("approval_required")
    shot(page, "approvals")
    approval_id = card.get_attribute("data-approval")
    card.locator("input[name=note]").fill("checked the migration")
    card.locator("button[data-decision=approve]").click()
    expect(page.locator(f'.approval[data-approval="{approval_id}"]')).to_contain_text("Approved.")
    final = served.wait(run["id"], "succeeded")
    assert [s["state"] for s in final["steps"]] == ["succeeded", "succeeded"]
    with served.api() as http:
        events = http.get(f"/api/runs/{run['id']}/events").json()
    decided = next(e for e in events if e["kind"] == "approval.decided")
    assert decided["details"]["note"] == "checked the migration"
    assert decided["details"]["by"].startswith("dashboard@")


def test_pages_are_usable_on_a_phone(browser: Browser, served: Served) -> None:
    run = served.start(GATED)
    served.wait(run["id"], "awaiting_approval")
    page = logged_in(browser, served, width=390, height=844)
    for path, name in (
        ("/", "overview-phone"),
        (f"/runs/{run['id']}", "run-phone"),
        ("/approvals", "approvals-phone"),
        ("/agents", "agents-phone"),
        ("/alerts", "alerts-phone"),
    ):
        page.goto(served.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, (path, width)  # no sideways scrolling of the page itself
        shot(page, name)
    page.goto(served.url + "/approvals")
    page.locator(".approval", has_text=run["id"]).locator("button[data-decision=reject]").click()
    served.wait(run["id"], "failed")


OVER_BUDGET = """
name: over-budget
budgets:
  run_usd: 0.1
steps:
  - id: spend
    run: >-
      echo '{"agenthq": {"cost_usd": 0.5}}'
  - id: more
    needs: [spend]
    run: echo more
"""


def test_ack_and_resolve_an_alert_by_clicking(browser: Browser, served: Served) -> None:
    run = served.start(OVER_BUDGET)
    served.wait(run["id"], "awaiting_approval")
    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    with served.api() as http:
        while time.monotonic() < deadline and not found:
            alerts = http.get("/api/alerts").json()["alerts"]
            found = [
                a for a in alerts if a["rule"] == "budget_exceeded" and a["run_id"] == run["id"]
            ]
            time.sleep(0.2)
    assert found, "serve opened no budget alert"
    alert_id = found[0]["id"]
    page = logged_in(browser, served)
    page.goto(served.url + "/alerts")
    row = page.locator(f'tr[data-alert="{alert_id}"]')
    expect(row).to_contain_text("budget exceeded")
    page.once("dialog", lambda dialog: dialog.accept("on it"))
    row.locator("button[data-alert-action=ack]").click()
    expect(row).to_contain_text("acknowledged by dashboard@127.0.0.1: on it")
    expect(row.locator("button[data-alert-action=ack]")).to_have_count(0)
    shot(page, "alerts")
    page.once("dialog", lambda dialog: dialog.accept(""))
    row.locator("button[data-alert-action=resolve]").click()
    expect(row).to_have_count(0)
    expect(page.locator("section", has_text="Recently resolved")).to_contain_text(run["id"])
    with served.api() as http:
        assert http.get("/api/alerts", params={"state": "resolved"}).json()["alerts"][0]["id"] == (
            alert_id
        )
        (approval,) = http.get("/api/approvals", params={"run": run["id"]}).json()["approvals"]
        rejected = http.post(f"/api/approvals/{approval['id']}/reject", json={"note": "no"})
        assert rejected.status_code == 200, rejected.text
    served.wait(run["id"], "failed")
