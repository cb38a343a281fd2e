"""Agents that need no LLM: plain Python callables for `uses: agenthq.agents.builtin.MODULE:FUNC`.

    security:scan        secrets (detect-secrets) and Python security issues (bandit)
    review:review        complexity, long functions, TODO/FIXME, eval/exec, SQL built from
                         strings, innerHTML
    compliance:check     a recognised LICENSE; dependencies' licences against an allow-list
    patcher:apply        a unified diff, dry-run first, with a reverse patch kept for undo
    notifier:notify      a webhook (Slack-compatible or generic), a file or the step's log

Each takes its arguments from the step's `with:`, reads and writes only inside the run's
workspace, returns JSON-able outputs and fails the step by raising an AgentHQError.
"""
