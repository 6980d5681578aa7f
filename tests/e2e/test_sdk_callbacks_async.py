"""SDK (issue 14, item 7): callbacks on run_code and exec, the streaming
iterator's final Execution, and AsyncSandbox with the same surface."""

import asyncio

import airlock
from airlock import AsyncSandbox


def test_run_code_callbacks(sb):
    out, err, results, errors = [], [], [], []
    ex = sb.run_code("import sys\nprint('o1', flush=True)\nprint('e1', file=sys.stderr, flush=True)\n6 * 7",
                     on_stdout=out.append, on_stderr=err.append, on_result=results.append, on_error=errors.append)
    assert "".join(out) == "o1\n" and "".join(err) == "e1\n", (out, err)
    assert [r.text for r in results if r.is_main_result] == ["42"] and ex.text == "42"
    assert errors == [] and ex.stdout == "o1\n"
    ex = sb.run_code("raise KeyError('k')", on_error=errors.append)
    assert [e.name for e in errors] == ["KeyError"] and ex.error.name == "KeyError"


def test_exec_callbacks(sb):
    out, err = [], []
    ex = sb.exec("echo a; echo b >&2; exit 3", on_stdout=out.append, on_stderr=err.append)
    assert ex.exit_code == 3 and "".join(out) == "a\n" and "".join(err) == "b\n", ex.raw
    assert ex.stdout == "a\n"


def test_stream_ends_with_the_execution(sb):
    items = list(sb.run_code_stream("print('x')\n1 + 1", final=True))
    assert isinstance(items[-1], airlock.Execution), items
    assert [i["type"] for i in items[:-1]][-2:] == ["result", "exit"]
    assert items[-1].stdout == "x\n" and items[-1].text == "2"
    it = sb.run_code_stream("print('y')")
    assert [e["type"] for e in it][-1] == "exit" and it.execution.stdout == "y\n"


def test_async_sandbox(daemon):
    async def main():
        async with await AsyncSandbox.create(timeout=120) as sb:
            assert sb.id.startswith("sb_")
            # two calls in flight at once on one loop
            a, b = await asyncio.gather(sb.run_code("x = 5\nx * 2"), sb.exec(["echo", "hi"]))
            assert a.text == "10" and b.stdout == "hi\n"
            await sb.files.write("f.txt", b"data")
            assert await sb.files.read("f.txt") == b"data"
            events = [ev async for ev in sb.run_code_stream("print('s')")]
            assert events[-1]["type"] == "exit"
            h = await sb.exec(["cat"], background=True)
            assert isinstance(h, airlock.AsyncCommandHandle) and h.pid > 1
            await h.send_stdin("in\n")
            await h.close_stdin()
            r = await h.wait(timeout=30)
            assert r.stdout == "in\n" and r.exit_code == 0
            listed = await sb.processes.list()
            assert [p["pid"] for p in listed] == [h.pid]
            h2 = await sb.processes.connect(h.pid)
            assert "".join([ev.get("data", "") async for ev in h2]) == "in\n"
            page = await AsyncSandbox.list(limit=1000)
            assert [s["id"] for s in page if s["id"] == sb.id] == [sb.id], page
            assert await AsyncSandbox.list(metadata={"async": "none-has-this"}) == []
            again = await AsyncSandbox.connect(sb.id)
            assert (await again.run_code("x")).text == "5"
            sid = sb.id
        return sid

    sid = asyncio.run(main())
    st = daemon.request("GET", "/v1/sandboxes/" + sid)[3]
    assert st["state"] in ("destroyed", "destroying"), st
