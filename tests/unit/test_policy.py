"""Project policy: allow/ask/deny patterns on parsed commands, layered over the risk score."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from agenthq.errors import ConfigError
from agenthq.gates import shell_syntax
from agenthq.gates.base import Outcome, Phase, StepFacts, run_gates
from agenthq.gates.policy import Policy, decide, pattern_matches
from agenthq.gates.risk import assess
from agenthq.gates.risk_gate import RiskGate
from agenthq.gates.shell_syntax import parse
from agenthq.ml.predictor import FailurePredictor

WORKSPACE = Path("/srv/agents/work/repo")


def decision_for(policy: Policy, line: str) -> tuple[str, str | None]:
    result = decide(policy, assess(line, workspace=WORKSPACE, home=Path("/home/dev")))
    return result.verdict, result.matched_rule


# --- patterns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "line", "skipping", "expected"),
    [
        # a trailing * matches any remaining words, or none
        ("pytest *", "pytest -q tests", False, True),
        ("pytest *", "pytest", False, True),
        # words match in order from the start (allow)
        ("git push --force*", "git push --force-with-lease", False, True),
        ("git push --force*", "git push origin --force", False, False),
        # deny/ask may skip words in between
        ("git push --force*", "git push origin main --force", True, True),
        # a glob is per word, never across words
        ("rm -rf /*", "rm -rf /var/tmp/x", False, True),
        ("rm -rf /*", "rm -rf build", False, False),
        # the first word matches the program's base name
        ("pytest *", ".venv/bin/pytest -x", False, True),
        # a pattern with a slash matches the program path itself
        ("./scripts/*.sh", "./scripts/check.sh --all", False, True),
        # quotes in a pattern group words
        ("git commit -m 'wip *'", "git commit -m 'wip on parser'", False, True),
        # a longer pattern does not match a shorter command
        ("npm run lint", "npm run", False, False),
        # deny/ask ignore case in the program name (SUDO runs sudo on macOS)
        ("sudo *", "SUDO ls", True, True),
        ("sudo *", "SUDO ls", False, False),
    ],
)
def test_pattern_matches(pattern: str, line: str, skipping: bool, expected: bool) -> None:
    command = parse(line).commands[0]
    assert pattern_matches(pattern, command, skipping=skipping) is expected


def test_quoted_data_never_matches() -> None:
    command = parse('echo "git push --force"').commands[0]
    assert not pattern_matches("git push --force*", command, skipping=True)


# --- decide --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "line", "verdict", "rule"),
    [
        # no rules: the thresholds decide
        (Policy(), "ls -la", "run", None),
        (Policy(), "pip install httpx", "ask", None),
        (Policy(), "rm -rf ~", "refuse", None),
        # allow lifts an ask to run
        (Policy(allow=("pip install *",)), "pip install httpx", "run", "pip install *"),
        # ... but every simple command must be allowed
        (Policy(allow=("pip install *",)), "pip install httpx && ./deploy.sh", "ask", None),
        # ... including the ones inside substitutions
        (Policy(allow=("echo *",)), "echo $(pip install x)", "ask", None),
        # transparent wrappers are covered by their inner command
        (Policy(allow=("pytest *",)), "timeout 60 pytest -x", "run", "pytest *"),
        (Policy(allow=("pytest *",)), "bash -c 'pytest -x'", "run", "pytest *"),
        # privilege wrappers are not
        (Policy(allow=("apt-get *",), refuse_min=101), "sudo apt-get install jq", "ask", None),
        # allow never overrides the refuse threshold
        (Policy(allow=("rm *",)), "rm -rf /", "refuse", None),
        # ask turns a run into an ask
        (Policy(ask=("git commit *",)), "git commit -m x", "ask", "git commit *"),
        # deny refuses even harmless commands, anywhere in the line
        (Policy(deny=("cat *",)), "ls && echo $(cat notes)", "refuse", "cat *"),
        # deny beats allow, ask beats allow
        (Policy(allow=("git *",), deny=("git push *",)), "git push", "refuse", "git push *"),
        (Policy(allow=("npm *",), ask=("npm publish*",)), "npm publish", "ask", "npm publish*"),
        # deny matches options in any position
        (Policy(deny=("git push -f*",)), "git push origin dev -f", "refuse", "git push -f*"),
        # quoted data is not a command
        (Policy(deny=("git push --force*",)), "echo 'git push --force'", "run", None),
        # thresholds come from the policy
        (Policy(auto_max=45), "pip install httpx", "run", None),
        (Policy(refuse_min=35), "pip install httpx", "refuse", None),
        # code known only at run time needs a rule of its own
        (Policy(allow=("echo *",)), 'echo go; eval "$PAYLOAD"', "ask", None),
        (Policy(allow=("echo *",)), 'echo go; bash -c "$PAYLOAD"', "ask", None),
    ],
)  # fmt: skip
def test_decide(policy: Policy, line: str, verdict: str, rule: str | None) -> None:
    assert decision_for(policy, line) == (verdict, rule)


def test_unparseable_is_never_auto_allowed() -> None:
    policy = Policy(allow=("echo *",), auto_max=20, refuse_min=101)
    verdict, rule = decision_for(policy, "echo 'unterminated")
    assert verdict == "ask"
    assert rule is None


def test_reason_names_rule_and_risk() -> None:
    result = decide(Policy(deny=("curl *",)), assess("curl example.org"))
    assert result.reason.startswith("matches deny rule 'curl *'")
    assert "downloads from the network" in result.reason


# --- from_mapping ----------------------------------------------------------------------------


def test_from_mapping_reads_every_key() -> None:
    policy = Policy.from_mapping(
        {"allow": ["pytest *"], "ask": ["git push*"], "deny": ["rm -rf /*"], "auto_max": 30},
        "agenthq.toml",
    )
    assert policy == Policy(("pytest *",), ("git push*",), ("rm -rf /*",), 30, 80)


def test_from_mapping_defaults() -> None:
    assert Policy.from_mapping({}, "agenthq.toml") == Policy()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "[policy] must be a table"),
        ({"alow": ["x"]}, "unknown key policy.alow"),
        ({"allow": "pytest *"}, "policy.allow must be a list of strings"),
        ({"deny": ["ok", 3]}, "policy.deny[1] must be a non-empty string"),
        ({"ask": ["  "]}, "policy.ask[0] must be a non-empty string"),
        ({"allow": ["echo 'open"]}, "policy.allow[0]"),
        ({"auto_max": "20"}, "policy.auto_max must be an integer"),
        ({"refuse_min": True}, "policy.refuse_min must be an integer"),
        ({"refuse_min": 500}, "policy.refuse_min must be between 0 and 101"),
        ({"auto_max": 80, "refuse_min": 80}, "must be below policy.refuse_min"),
    ],
)
def test_from_mapping_rejects(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Policy.from_mapping(data, "/proj/agenthq.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("/proj/agenthq.toml: ")


# --- the gate --------------------------------------------------------------------------------


def facts(
    command: str | None, *, approval_required: bool = False, workspace: Path = WORKSPACE
) -> StepFacts:
    return StepFacts(
        run_id="r1",
        step_id="s1",
        attempt=1,
        workspace=workspace,
        command=command,
        target=None if command else "pkg.mod:fn",
        approval_required=approval_required,
    )


def test_gate_identity() -> None:
    gate = RiskGate()
    assert gate.name == "risk"
    assert gate.phase is Phase.BEFORE


@pytest.mark.parametrize(
    ("command", "outcome"),
    [
        ("git status", Outcome.PASS),
        ("pip install httpx", Outcome.ASK),
        ("rm -rf ~", Outcome.REFUSE),
    ],
)
def test_gate_outcomes(command: str, outcome: Outcome) -> None:
    result = RiskGate(home=Path("/home/dev")).check(facts(command))
    assert result.outcome is outcome
    assert result.gate == "risk"
    assert result.score is not None


def test_gate_details_carry_reasons_and_rule() -> None:
    gate = RiskGate(Policy(allow=("pip install *",)))
    result = gate.check(facts("pip install httpx"))
    assert result.outcome is Outcome.PASS
    assert result.details["rule"] == "pip install *"
    assert result.details["reasons"] == ["installs Python packages"]
    assert "installs Python packages" in result.reason


def test_python_steps_pass_with_score_zero() -> None:
    result = RiskGate().check(facts(None))
    assert result.outcome is Outcome.PASS
    assert result.score == 0


def test_declared_approval_asks() -> None:
    assert RiskGate().check(facts("ls", approval_required=True)).outcome is Outcome.ASK
    assert RiskGate().check(facts(None, approval_required=True)).outcome is Outcome.ASK
    refused = RiskGate().check(facts("rm -rf /", approval_required=True))
    assert refused.outcome is Outcome.REFUSE


def test_gate_uses_the_step_workspace() -> None:
    gate = RiskGate(home=Path("/home/dev"))
    inside = gate.check(facts("rm -r /w/repo/out", workspace=Path("/w/repo")))
    outside = gate.check(facts("rm -r /w/other/out", workspace=Path("/w/repo")))
    assert inside.outcome is Outcome.ASK
    assert outside.outcome is Outcome.REFUSE


def test_gate_runs_through_run_gates() -> None:
    [result] = run_gates([RiskGate()], facts("cat README.md"))
    assert result.outcome is Outcome.PASS
    assert result.duration_ms >= 0


class ChangingPredictor:
    """A failure model whose prediction for the same command changes between calls."""

    def __init__(self, *probabilities: float) -> None:
        self.probabilities = list(probabilities)

    def predict(self, candidate: object) -> float:
        return self.probabilities.pop(0)


def test_a_command_seen_again_is_decided_again_when_the_model_adds_points() -> None:
    """Without a model a command's score and decision are kept for the run; with one, the
    policy decides again each time, on the score with that moment's points."""
    plain = RiskGate(Policy(auto_max=30))
    first, again = plain.check(facts("pip install httpx")), plain.check(facts("pip install httpx"))
    assert (first.outcome, first.reason, first.score) == (again.outcome, again.reason, again.score)
    model = cast(FailurePredictor, ChangingPredictor(0.0, 1.0, 0.0))
    gate = RiskGate(Policy(auto_max=20), predictor=model, model_weight=0.25)
    outcomes = [gate.check(facts("git status")) for _ in range(3)]
    assert [o.outcome for o in outcomes] == [Outcome.PASS, Outcome.ASK, Outcome.PASS]
    assert [o.details["model_points"] for o in outcomes] == [0, 25, 0]


def test_a_parser_that_cannot_load_makes_each_check_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the gate loads the parser early; if that fails, the gate is still built and
    fails closed at each check, as any gate error does."""

    def broken() -> None:
        raise ImportError("tree_sitter_bash: undefined symbol")

    monkeypatch.setattr(shell_syntax, "_parser", broken)
    gate = RiskGate()
    [result] = run_gates([gate], facts("git status"))
    assert result.outcome is Outcome.ASK
    assert "undefined symbol" in result.reason
