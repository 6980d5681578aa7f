"""AsyncSandbox: the Sandbox surface for asyncio code.

Each call runs the synchronous client in a worker thread
(``asyncio.to_thread``). Why threads and not an asyncio HTTP client: the SDK
stays standard-library only (``pip install ./sdk/python`` needs nothing
else), and the standard library has no asyncio HTTP client; writing one over
asyncio streams would mean a hand-written HTTP/1.1 parser (chunked bodies,
keep-alive, unix sockets), which this project does not do. http.client in a
thread is the tested transport of the sync SDK, so both behave the same,
errors included. The cost is a thread per call in flight (the default
executor's pool), which suits an agent's handful of concurrent calls; the
event loop itself never blocks.

    async with await AsyncSandbox.create() as sb:
        ex = await sb.run_code("6 * 7")
        h = await sb.exec("python3 -m http.server 8000", background=True)
        async for ev in sb.run_code_stream("print(1)"):
            ...
"""

import asyncio
import functools

from .sandbox import Sandbox

_END = object()


def _next(it):
    try:
        return next(it)
    except StopIteration:
        return _END


class _AsyncIter:
    """An async iterator over a blocking one: each step in a worker thread."""

    def __init__(self, make):
        self._make = make
        self._it = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._it is None:
            self._it = await asyncio.to_thread(self._make)
        item = await asyncio.to_thread(_next, self._it)
        if item is _END:
            raise StopAsyncIteration
        return item

    @property
    def execution(self):
        return getattr(self._it, "execution", None)

    async def aclose(self):
        close = getattr(self._it, "close", None)
        if close:
            await asyncio.to_thread(close)


class _Proxy:
    """Every public method of the wrapped object as a coroutine."""

    _sync = ()  # attribute names passed through as they are

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name in self._sync or name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        async def call(*args, **kwargs):
            return await asyncio.to_thread(attr, *args, **kwargs)
        return call


class AsyncCommandHandle(_Proxy):
    """A background process (``await sb.exec(..., background=True)``):
    ``pid``, ``await wait()``, ``await kill()``, ``await send_stdin()``,
    ``await close_stdin()``, ``async for ev in handle`` (its output)."""

    _sync = ("pid", "info")

    def __aiter__(self):
        return _AsyncIter(lambda: iter(self._inner.output()))

    def output(self, *args, **kwargs):
        return _AsyncIter(lambda: self._inner.output(*args, **kwargs))

    def __repr__(self):
        return "Async" + repr(self._inner)


class AsyncProcesses(_Proxy):
    async def connect(self, pid):
        return AsyncCommandHandle(await asyncio.to_thread(self._inner.connect, pid))


class AsyncFiles(_Proxy):
    def watch_dir(self, *args, **kwargs):
        return _AsyncIter(lambda: iter(self._inner.watch_dir(*args, **kwargs)))


class AsyncSandbox(_Proxy):
    """``Sandbox`` for asyncio: the same methods, each awaited. Create one
    with ``await AsyncSandbox.create(...)`` (the arguments of ``Sandbox``)."""

    _sync = ("id", "raw_info")

    def __init__(self, sync_sandbox):
        super().__init__(sync_sandbox)
        self.files = AsyncFiles(sync_sandbox.files)
        self.processes = AsyncProcesses(sync_sandbox.processes)

    @classmethod
    async def create(cls, *args, **kwargs):
        return cls(await asyncio.to_thread(Sandbox, *args, **kwargs))

    @classmethod
    async def connect(cls, sandbox_id, **kwargs):
        return cls(await asyncio.to_thread(Sandbox.connect, sandbox_id, **kwargs))

    @classmethod
    async def list(cls, **kwargs):
        """``Sandbox.list``: a page of sandbox info dicts (with ``next_token``);
        ``await AsyncSandbox.connect(info["id"])`` for one of them."""
        return await asyncio.to_thread(Sandbox.list, **kwargs)

    @property
    def id(self):
        return self._inner.id

    def __repr__(self):
        return "Async" + repr(self._inner)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await asyncio.to_thread(self._inner.close)

    async def exec(self, cmd, *args, **kwargs):
        out = await asyncio.to_thread(self._inner.exec, cmd, *args, **kwargs)
        if kwargs.get("background"):
            return AsyncCommandHandle(out)
        return out

    def run_code_stream(self, *args, **kwargs):
        """An async iterator of the events (``async for``)."""
        return _AsyncIter(lambda: self._inner.run_code_stream(*args, **kwargs))
