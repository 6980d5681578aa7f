"""A minimal agent loop: a Claude model with Airlock's tools, over the
Messages HTTP API with urllib only (no vendor SDK).

    export ANTHROPIC_API_KEY=sk-ant-... AIRLOCK_URL=http://127.0.0.1:7070 AIRLOCK_API_KEY=ak_...
    PYTHONPATH=sdk/python python3 examples/agent_loop_anthropic.py "What is the 20th Fibonacci number?"

ANTHROPIC_MODEL picks the model (default claude-sonnet-4-5); ANTHROPIC_BASE_URL
another endpoint (default https://api.anthropic.com).
"""

import json
import os
import sys
import urllib.request

from airlock import Sandbox
from airlock.tools import anthropic_tools, dispatch

SYSTEM = ("You can run code in a sealed sandbox with the tools given. Use them to compute answers "
          "instead of guessing, then answer briefly.")


def messages_api(base_url, api_key, body):
    req = urllib.request.Request(base_url.rstrip("/") + "/v1/messages", data=json.dumps(body).encode(),
                                 headers={"x-api-key": api_key, "anthropic-version": "2023-06-01",
                                          "content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


def run(sandbox, task, api_key, model="claude-sonnet-4-5", base_url="https://api.anthropic.com", max_turns=10,
        log=print):
    """Loop until the model stops without a tool call, or max_turns; the answer (or None)."""
    messages = [{"role": "user", "content": task}]
    for _ in range(max_turns):
        reply = messages_api(base_url, api_key, {"model": model, "max_tokens": 4096, "system": SYSTEM,
                                                 "tools": anthropic_tools(), "messages": messages})
        messages.append({"role": "assistant", "content": reply["content"]})
        calls = [b for b in reply["content"] if b.get("type") == "tool_use"]
        if not calls:
            return "".join(b.get("text", "") for b in reply["content"] if b.get("type") == "text")
        results = []
        for call in calls:
            log("-> %s %s" % (call["name"], json.dumps(call.get("input"))[:200]))
            result = dispatch(sandbox, call["name"], call.get("input"))
            log("<- %s" % json.dumps(result)[:200])
            results.append({"type": "tool_result", "tool_use_id": call["id"], "content": json.dumps(result),
                            "is_error": "error" in result})
        messages.append({"role": "user", "content": results})
    return None


def main():
    task = " ".join(sys.argv[1:]) or "Use Python to compute the sum of the squares of 1..100."
    with Sandbox(egress=False) as sb:
        answer = run(sb, task, os.environ["ANTHROPIC_API_KEY"],
                     model=os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
                     base_url=os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
                     max_turns=int(os.environ.get("AGENT_MAX_TURNS", "10")))
    print(answer if answer is not None else "(no final answer within the turn limit)")


if __name__ == "__main__":
    main()
