"""The built-in agents on real files, real analysers (detect-secrets, bandit, radon), real
git and a real HTTP receiver: what each finds and where, thresholds that fail the step after
logging, patches applied, undone and rolled back, paths kept inside the workspace."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agenthq.agents.builtin import compliance, notifier, patcher, review, security
from agenthq.errors import AgentTaskError, FindingsError, InputError

SAMPLE = Path(__file__).parents[2] / "examples" / "sample-repo"
NOTICE = Path(__file__).parents[2] / "examples" / "patches" / "add-notice.patch"


@dataclass
class Ctx:
    workspace: Path
    run_id: str = "r1"
    step_id: str = "s1"
    attempt: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @property
    def cwd(self) -> Path:
        return self.workspace

    def log(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    return Ctx(tmp_path)


def rules(outputs: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(f["file"], f["line"], f["rule"]) for f in outputs["findings"]}


def test_security_finds_secrets_and_bandit_issues_without_showing_the_value(ctx: Ctx) -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    (ctx.workspace / "app.py").write_text(
        f'import subprocess\nAWS = "{key}"\nsubprocess.call("ls " + AWS, shell=True)\n'
    )
    (ctx.workspace / "clean.py").write_text("print('hello')\n")
    with pytest.raises(
        FindingsError, match=r"finding\(s\) at or above 'high' \(first: app.py:2 AWS"
    ):
        security.scan(".", severity="high", ctx=ctx)
    log = "\n".join(ctx.lines)
    assert "app.py:2" in log
    assert key not in log  # named, never shown
    outputs = security.scan(".", severity="none", ctx=ctx)
    assert ("app.py", 2, "AWS Access Key") in rules(outputs)
    assert any(f["tool"] == "bandit" and f["line"] == 3 for f in outputs["findings"])
    assert not any(f["file"] == "clean.py" for f in outputs["findings"])
    assert key not in json.dumps(outputs)


def test_review_flags_what_reviewers_flag(ctx: Ctx) -> None:
    subprocess.run(["cp", "-r", f"{SAMPLE}/.", str(ctx.workspace)], check=True)
    outputs = review.review(".", max_complexity=8, ctx=ctx)
    found = rules(outputs)
    assert ("src/shop/orders.py", 10, "sql-concatenation") in found
    assert ("src/shop/orders.py", 14, "eval") in found
    assert ("src/shop/orders.py", 21, "complexity") in found
    assert ("static/cart.js", 3, "innerHTML") in found
    assert outputs["todo"] == {"TODO": 1, "FIXME": 1}
    with pytest.raises(FindingsError):
        review.review(".", max_complexity=8, fail_on="high", ctx=ctx)
    (ctx.workspace / "ok.py").write_text("def f(x):\n    return eval_rules(x)  # eval in a name\n")
    assert not any(f["file"] == "ok.py" for f in review.review("ok.py", ctx=ctx)["findings"])


def test_compliance_recognises_licences_and_checks_dependencies(ctx: Ctx) -> None:
    subprocess.run(["cp", "-r", f"{SAMPLE}/.", str(ctx.workspace)], check=True)
    outputs = compliance.check(".", ctx=ctx)
    assert outputs["license"] == "MIT"
    assert outputs["dependencies"] == {"pydantic": "MIT", "rich": "MIT"}
    with pytest.raises(FindingsError, match="license-not-allowed"):
        compliance.check(".", allow=["Apache-2.0"], ctx=ctx)
    (ctx.workspace / "LICENSE").unlink()
    with pytest.raises(FindingsError, match="no-license"):
        compliance.check(".", ctx=ctx)
    (ctx.workspace / "requirements.txt").write_text("no-such-package-xyz==1.0\n")
    outputs = compliance.check(".", require_license=False, ctx=ctx)
    assert outputs["dependencies"]["no-such-package-xyz"] == "unknown"


def test_patcher_applies_writes_the_reverse_and_undoes(ctx: Ctx) -> None:
    (ctx.workspace / "a.txt").write_text("one\ntwo\n")
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
    outputs = patcher.apply(diff, ctx=ctx)
    assert outputs["files"] == ["a.txt"]
    assert (ctx.workspace / "a.txt").read_text() == "one\nTWO\n"
    reverse = ctx.workspace / outputs["reverse_patch"]
    subprocess.run(["git", "apply", str(reverse)], cwd=ctx.workspace, check=True)
    assert (ctx.workspace / "a.txt").read_text() == "one\ntwo\n"
    (ctx.workspace / "patches").mkdir()
    (ctx.workspace / "patches" / "notice.patch").write_text(NOTICE.read_text())
    created = patcher.apply(patch_file="patches/notice.patch", ctx=ctx)
    assert created["files"] == ["NOTICE.md"]
    assert (ctx.workspace / "NOTICE.md").read_text().startswith("# Notice")


def test_patcher_rolls_back_when_verification_fails(ctx: Ctx) -> None:
    (ctx.workspace / "a.txt").write_text("one\ntwo\n")
    diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
    with pytest.raises(AgentTaskError, match="rolled back"):
        patcher.apply(diff, verify="grep -q never a.txt", ctx=ctx)
    assert (ctx.workspace / "a.txt").read_text() == "one\ntwo\n"


def test_patcher_refuses_bad_patches_and_changes_nothing(ctx: Ctx) -> None:
    (ctx.workspace / "a.txt").write_text("one\n")
    conflicting = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-other\n+x\n"
    with pytest.raises(AgentTaskError, match="does not apply"):
        patcher.apply(conflicting, ctx=ctx)
    assert (ctx.workspace / "a.txt").read_text() == "one\n"
    escaping = "--- a/../evil\n+++ b/../evil\n@@ -0,0 +1 @@\n+x\n"
    with pytest.raises(InputError, match="outside the workspace"):
        patcher.apply(escaping, ctx=ctx)
    with pytest.raises(InputError, match="outside the workspace"):
        patcher.apply(patch_file="/etc/passwd", ctx=ctx)
    with pytest.raises(InputError, match="not a unified diff"):
        patcher.apply("hello", ctx=ctx)


def test_reverse_patch_of_a_new_file_deletes_it() -> None:
    reverse = patcher.reverse_patch(NOTICE.read_text())
    assert reverse.startswith("--- a/NOTICE.md\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-# Notice\n")


@pytest.fixture
def receiver() -> Iterator[tuple[list[Any], list[int], str]]:
    posts: list[Any] = []
    statuses = [500]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = statuses.pop(0) if statuses else 200
            if status == 200:
                posts.append(body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield posts, statuses, f"http://127.0.0.1:{server.server_address[1]}/hook?token=t0ps3cret"
    server.shutdown()
    server.server_close()


def test_notifier_posts_with_retries_and_never_logs_the_url(
    ctx: Ctx, receiver: tuple[list[Any], list[int], str]
) -> None:
    posts, _, url = receiver
    ctx.env = {"HOOK": url}
    outputs = notifier.notify("deployed", webhook_env="HOOK", file="notes/log.txt", ctx=ctx)
    assert posts == [{"text": "deployed"}]  # the first try got a 500, the retry went through
    assert outputs["sent_to"] == ["webhook 127.0.0.1", "file notes/log.txt"]
    assert (ctx.workspace / "notes" / "log.txt").read_text() == "deployed\n"
    assert "t0ps3cret" not in "\n".join(ctx.lines)
    notifier.notify("as json", webhook=url, format="generic", ctx=ctx)
    assert posts[-1] == {"message": "as json", "run_id": "r1", "step_id": "s1"}
    with pytest.raises(InputError, match="outside the workspace"):
        notifier.notify("x", file="../out.txt", ctx=ctx)
