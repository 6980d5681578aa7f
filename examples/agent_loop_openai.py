"""A minimal agent loop: an OpenAI model with Airlock's tools, over the
Chat Completions HTTP API with urllib only (no vendor SDK).

    export OPENAI_API_KEY=sk-... AIRLOCK_URL=http://127.0.0.1:7070 AIRLOCK_API_KEY=ak_...
    PYTHONPATH=sdk/python python3 examples/agent_loop_openai.py "What is the 20th Fibonacci number?"

OPENAI_MODEL picks the model (default gpt-4o-mini); OPENAI_BASE_URL another
compatible endpoint (default https://api.openai.com/v1).
"""

import json
import os
import sys
import urllib.request

from airlock import Sandbox
from airlock.tools import dispatch, openai_tools

SYSTEM = ("You can run code in a sealed sandbox with the tools given. Use them to compute answers "
          "instead of guessing, then answer briefly.")


def chat(base_url, api_key, body):
    req = urllib.request.Request(base_url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + api_key,
                                          "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


def run(sandbox, task, api_key, model="gpt-4o-mini", base_url="https://api.openai.com/v1", max_turns=10,
        log=print):
    """Loop until the model answers without a tool call, or max_turns; the answer (or None)."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
    for _ in range(max_turns):
        reply = chat(base_url, api_key, {"model": model, "messages": messages, "tools": openai_tools()})
        msg = reply["choices"][0]["message"]
        messages.append(msg)
        calls = msg.get("tool_calls") or []
        if not calls:
            return msg.get("content")
        for call in calls:
            fn = call["function"]
            log("-> %s %s" % (fn["name"], fn.get("arguments", "")[:200]))
            result = dispatch(sandbox, fn["name"], fn.get("arguments"))
            log("<- %s" % json.dumps(result)[:200])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})
    return None


def main():
    task = " ".join(sys.argv[1:]) or "Use Python to compute the sum of the squares of 1..100."
    with Sandbox(egress=False) as sb:
        answer = run(sb, task, os.environ["OPENAI_API_KEY"], model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
                     base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                     max_turns=int(os.environ.get("AGENT_MAX_TURNS", "10")))
    print(answer if answer is not None else "(no final answer within the turn limit)")


if __name__ == "__main__":
    main()
