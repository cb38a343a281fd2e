"""Stand-ins for coding-agent CLIs (claude, codex, aider, gemini) that behave as the tests
need: they read the prompt from argv, edit NOTES.md in their working directory, and print
what the real tool prints in its documented output format (usage, cost, session id).

Prompts steer them: `FAIL!` makes the tool report an error (and exit 1), `FAIL-ONCE` fails
the first time only (a marker file remembers), `SLEEP!` hangs for a minute, `json:` answers
with the JSON object after the colon.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    prompt, session = _prompt_and_session(tool, args)
    with Path("NOTES.md").open("a") as notes:
        notes.write(f"{tool}: {prompt}\n")
    if "SLEEP!" in prompt:
        time.sleep(60)
    failing = "FAIL!" in prompt
    if "FAIL-ONCE" in prompt:
        marker = Path(".fail-once")
        failing = not marker.exists()
        marker.write_text("")
    answer = prompt.split("json:", 1)[1].strip() if "json:" in prompt else f"done: {prompt}"
    if session:
        answer = f"resumed {session}: {answer}"
    return _print(tool, answer, session or f"{tool}-session-1", failing)


def _prompt_and_session(tool: str, args: list[str]) -> tuple[str, str | None]:
    if tool == "codex":  # exec --json [--model M] [resume ID] PROMPT
        rest = [a for a in args if a not in ("exec", "--json")]
        if "--model" in rest:
            i = rest.index("--model")
            del rest[i : i + 2]
        if rest and rest[0] == "resume":
            return rest[2], rest[1]
        return rest[0], None
    flag = {"claude": "-p", "gemini": "-p", "aider": "--message"}[tool]
    prompt = args[args.index(flag) + 1]
    session = args[args.index("--resume") + 1] if "--resume" in args else None
    return prompt, session


def _print(tool: str, answer: str, session: str, failing: bool) -> int:
    if tool == "claude":
        print(
            json.dumps(
                {
                    "type": "result",
                    "subtype": "error_during_execution" if failing else "success",
                    "is_error": failing,
                    "result": "it broke" if failing else answer,
                    "session_id": session,
                    "total_cost_usd": 0.0123,
                    "num_turns": 3,
                    "usage": {
                        "input_tokens": 1200,
                        "output_tokens": 340,
                        "cache_read_input_tokens": 50,
                    },
                }
            )
        )
    elif tool == "codex":
        print(json.dumps({"type": "thread.started", "thread_id": session}))
        print(json.dumps({"type": "turn.started"}))
        if failing:
            print(json.dumps({"type": "turn.failed", "error": {"message": "it broke"}}))
        else:
            print(
                json.dumps(
                    {
                        "type": "item.completed",
                        "item": {"id": "i1", "type": "agent_message", "text": answer},
                    }
                )
            )
            print(
                json.dumps(
                    {
                        "type": "turn.completed",
                        "usage": {
                            "input_tokens": 2000,
                            "cached_input_tokens": 500,
                            "output_tokens": 1000,
                        },
                    }
                )
            )
    elif tool == "aider":
        print("Aider v0.86.0\nModel: sonnet with diff edit format")
        print(answer)
        print("Tokens: 2.1k sent, 350 received. Cost: $0.01 message, $0.03 session.")
        if failing:
            print("it broke", file=sys.stderr)
    elif tool == "gemini":
        body: dict[str, object] = {
            "response": answer,
            "stats": {
                "models": {
                    "gemini-2.5-pro": {
                        "tokens": {"prompt": 800, "candidates": 200, "total": 1000, "cached": 0}
                    }
                }
            },
        }
        if failing:
            body["error"] = {"type": "ApiError", "message": "it broke"}
        print(json.dumps(body))
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
