"""HTTP transport: one persistent keep-alive connection, TCP or unix socket.

``AIRLOCK_URL`` (or ``base_url``) is ``http://host:port``, ``https://...`` or
``unix:///path/to.sock``.  Idle keep-alive connections are kept per endpoint
and shared by every ``Transport`` (so every ``Sandbox``) of the process: a
request takes one and gives it back, so create, run and close of one sandbox,
and the next sandbox after it, all go over one connection (airlockd serves
each connection with one thread, so reuse also spares the daemon a thread
start per request).  Connections carry no credentials: the key is a header of
each request.  An idle
connection the daemon has closed (its idle timeout, a restart) is noticed
before it is reused and replaced.  If a reused connection still dies before
an answer arrives, the request is sent once more on a fresh connection, but
only when that cannot run it twice: the method is idempotent (GET, PUT,
DELETE, HEAD), or sending failed, so the daemon never had the whole request
(it acts only on complete requests).  A POST whose answer was lost raises
``AirlockConnectionError``: the code may have run.  Every socket /
http.client failure becomes an ``AirlockConnectionError``.

Rate limits: a 429 with a Retry-After header (``rate_limited``,
``too_many_requests``, ``too_many_auth_failures``) means airlockd refused the
request before doing anything, so it is safe to send again, whatever the
method.  The transport waits Retry-After and sends it once more when the wait
is at most ``Transport.RATE_LIMIT_RETRY_MAX_S`` seconds and the body can be
sent again (none, bytes, or a seekable file); otherwise, or if the retry is
refused too, ``RateLimitError`` (with ``retry_after``) is raised.  Sandbox
quotas (``QuotaExceeded``) are never retried: only closing sandboxes helps.
"""

import hashlib
import http.client
import json
import os
import select
import socket
import threading
import time
import urllib.parse
import zlib

from .errors import (AirlockConnectionError, IntegrityError, RateLimitError, TransferError,
                     error_from_response)

DEFAULT_URL = "http://127.0.0.1:7070"
CONNECT_TIMEOUT = 10.0
BLOCK_SIZE = 256 * 1024
_MAX_IDLE = 4

# Errors that mean "the connection died before a response arrived".  On a
# connection that already served a request this is the stale keep-alive case,
# and the request is retried once on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError,
          ConnectionResetError, ConnectionAbortedError)

# Sending one of these twice has the effect of sending it once.
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS"))


def _idle_conn_dead(conn):
    """True if an idle keep-alive connection cannot carry a request: the
    daemon closed it (readable at EOF) or sent something unasked.  A healthy
    idle connection has nothing to read."""
    if conn.sock is None:
        return False  # never connected: connect() opens it
    try:
        p = select.poll()
        p.register(conn.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(p.poll(0))
    except (OSError, ValueError):
        return True


def decode_json(data):
    """A JSON answer body as a dict ({} when empty)."""
    if not data:
        return {}
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as e:
        raise AirlockConnectionError("bad JSON from airlockd: %s" % e)


class _IdlePool:
    __slots__ = ("conns", "lock")

    def __init__(self):
        self.conns = []
        self.lock = threading.Lock()


_POOLS = {}
_POOLS_LOCK = threading.Lock()


def _idle_pool(endpoint):
    with _POOLS_LOCK:
        pool = _POOLS.get(endpoint)
        if pool is None:
            pool = _POOLS[endpoint] = _IdlePool()
        return pool


def _forget_pools_in_child():
    # A forked child must not share the parent's sockets (two processes
    # writing requests into one connection) nor inherit a lock some other
    # thread held at the fork.  Dropping the objects closes only the child's
    # copies of the descriptors: the parent's connections stay open.
    global _POOLS, _POOLS_LOCK
    _POOLS = {}
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)


def close_idle_connections():
    """Close every idle keep-alive connection of this process (the daemon
    would close them after its idle timeout anyway)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        with pool.lock:
            idle = pool.conns[:]
            del pool.conns[:]
        for conn in idle:
            conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout, blocksize=BLOCK_SIZE)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Transport:
    # Longest Retry-After the transport waits out by itself (seconds); 0
    # turns the automatic retry off.
    RATE_LIMIT_RETRY_MAX_S = 5.0

    def __init__(self, base_url=None, api_key=None):
        self.base_url = (base_url or os.environ.get("AIRLOCK_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("AIRLOCK_API_KEY")
        u = urllib.parse.urlsplit(self.base_url)
        self._scheme = u.scheme
        if u.scheme == "unix":
            self._unix_path = u.path or u.netloc
            self._prefix = ""
            if not self._unix_path:
                raise AirlockConnectionError("bad AIRLOCK_URL %r: no socket path" % self.base_url)
        elif u.scheme in ("http", "https"):
            self._host = u.hostname or "127.0.0.1"
            self._port = u.port
            self._prefix = u.path.rstrip("/")
        else:
            raise AirlockConnectionError("bad AIRLOCK_URL %r: use http://, https:// or unix://"
                                         % self.base_url)
        # Idle keep-alive connections to this endpoint, shared with every other
        # Transport of the process.  A request takes one (or opens one) and
        # gives it back once its response was read to the end, so requests in
        # sequence reuse a single connection, while a stream being iterated
        # and a call made meanwhile (or from another thread) each get their own.
        # (looked up on each use, so a transport made before a fork uses the
        # child's own pool after it)
        self._endpoint_key = self._endpoint()

    @property
    def _idle(self):
        return _idle_pool(self._endpoint_key).conns

    @property
    def _lock(self):
        return _idle_pool(self._endpoint_key).lock

    # -- connection management -------------------------------------------------
    def _new_conn(self):
        if self._scheme == "unix":
            return _UnixHTTPConnection(self._unix_path, CONNECT_TIMEOUT)
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=CONNECT_TIMEOUT,
                                               blocksize=BLOCK_SIZE)
        return http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT,
                                          blocksize=BLOCK_SIZE)

    def _take(self):
        """Return (connection, reused)."""
        pool = _idle_pool(self._endpoint_key)
        while True:
            with pool.lock:
                conn = pool.conns.pop() if pool.conns else None
            if conn is None:
                return self._new_conn(), False
            if not _idle_conn_dead(conn):
                return conn, True
            conn.close()

    def _give_back(self, conn, resp):
        if resp.will_close or conn.sock is None:
            conn.close()
            return
        pool = _idle_pool(self._endpoint_key)
        with pool.lock:
            if len(pool.conns) < _MAX_IDLE:
                pool.conns.append(conn)
                return
        conn.close()

    def _endpoint(self):
        if self._scheme == "unix":
            return ("unix", self._unix_path)
        return (self._scheme, self._host, self._port)

    def close(self):
        """Nothing to release: idle connections belong to the process-wide
        pool (``close_idle_connections()`` closes them), and a connection in
        use is closed or given back by the request that holds it."""

    def _headers(self, extra):
        h = {"Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        if extra:
            h.update(extra)
        return h

    # -- requests --------------------------------------------------------------
    def _send(self, method, path, body, headers, timeout):
        """Send one request; return (conn, response) with the headers read.

        The caller reads the body and then calls _give_back(conn, resp), or
        closes conn."""
        url = self._prefix + path
        rewind = None
        if body is not None and hasattr(body, "seek"):
            pos = body.tell()
            rewind = lambda: body.seek(pos)  # noqa: E731
        for attempt in (0, 1):
            conn, reused = self._take()
            sent = False
            try:
                if conn.sock is None:
                    conn.connect()
                conn.sock.settimeout(timeout)
                try:
                    conn.request(method, url, body=body, headers=headers)
                    sent = True
                except (BrokenPipeError, ConnectionResetError):
                    # The daemon may answer early and stop reading, e.g. 413
                    # for an upload over its limit: that answer is the one to
                    # report, so read it if it is there.
                    pass
                return conn, conn.getresponse()
            except _STALE as e:
                conn.close()
                if attempt == 0 and reused and (method in _IDEMPOTENT or not sent):
                    if rewind is not None:
                        rewind()
                    continue
                raise AirlockConnectionError("connection to %s lost: %s" % (self.base_url, e))
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if isinstance(e, socket.timeout):
                    raise AirlockConnectionError("request to %s timed out" % self.base_url)
                raise AirlockConnectionError("cannot reach airlockd at %s: %s" % (self.base_url, e))
        raise AssertionError("unreachable")

    def _finish(self, conn, resp):
        """Read a whole response body, release the connection, raise the typed
        error on a status >= 400."""
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise AirlockConnectionError("connection to %s lost while reading: %s"
                                         % (self.base_url, e))
        self._give_back(conn, resp)
        if resp.status >= 400:
            raise error_from_response(resp.status, data, resp.headers)
        return data

    def _replayable(self, err, body):
        return (err.retry_after is not None and err.retry_after <= self.RATE_LIMIT_RETRY_MAX_S
                and (body is None or isinstance(body, (bytes, bytearray, memoryview))
                     or hasattr(body, "seek")))

    def _open(self, method, path, body, headers, timeout):
        """Send a request; return (conn, response) with the headers read and
        a status below 400, or raise the typed error (after the one retry a
        rate limit allows, see the module's doc)."""
        pos = body.tell() if body is not None and hasattr(body, "seek") else None
        conn, resp = self._send(method, path, body, headers, timeout)
        if resp.status < 400:
            return conn, resp
        try:
            self._finish(conn, resp)  # raises: the status is >= 400
        except RateLimitError as e:
            if not self._replayable(e, body):
                raise
            time.sleep(e.retry_after)
            if pos is not None:
                body.seek(pos)
        conn, resp = self._send(method, path, body, headers, timeout)
        if resp.status >= 400:
            self._finish(conn, resp)
        return conn, resp

    def request_raw(self, method, path, body=None, headers=None, timeout=60.0):
        conn, resp = self._open(method, path, body, self._headers(headers), timeout)
        return self._finish(conn, resp)

    def request_json(self, method, path, payload=None, timeout=60.0, query=None):
        if query:
            path = path + "?" + urllib.parse.urlencode(query)
        headers = {}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return decode_json(self.request_raw(method, path, body, headers, timeout))

    def request_to_file(self, method, path, out, timeout=60.0, gzip=False):
        """Stream a response body into the writable ``out``; return bytes written.

        The body is verified: fewer bytes than its Content-Length raise
        TransferError (http.client reports a premature end as an empty
        read, like a normal one), and bytes whose sha256 is not the
        daemon's X-Content-SHA256 raise IntegrityError. With ``gzip`` the
        daemon is asked to compress (Accept-Encoding: gzip); a compressed
        body is inflated as it arrives, its length is X-Content-Length and
        a body without gzip's trailer is cut short."""
        extra = {"Accept": "*/*"}
        if gzip:
            extra["Accept-Encoding"] = "gzip"
        conn, resp = self._open(method, path, None, self._headers(extra), timeout)
        inflate = None
        if (resp.getheader("Content-Encoding") or "").strip().lower() == "gzip":
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            declared = int(resp.getheader("X-Content-Length" if inflate else "Content-Length"))
        except (TypeError, ValueError):
            declared = None
        want_sha = (resp.getheader("X-Content-SHA256") or "").strip().lower() or None
        h = hashlib.sha256()
        total = 0
        try:
            while True:
                chunk = resp.read(BLOCK_SIZE)
                if not chunk:
                    break
                if inflate is not None:
                    try:
                        chunk = inflate.decompress(chunk)
                    except zlib.error as e:
                        raise TransferError("download corrupted: not gzip: %s" % e)
                h.update(chunk)
                out.write(chunk)
                total += len(chunk)
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise TransferError("connection lost during download after %d bytes: %s" % (total, e))
        except BaseException:
            conn.close()
            raise
        if inflate is not None and not inflate.eof:
            conn.close()
            raise TransferError("download cut short: the gzip body ended before its trailer (%d bytes)" % total)
        if declared is not None and total != declared:
            conn.close()
            raise TransferError("download cut short: %d of %d bytes arrived" % (total, declared))
        self._give_back(conn, resp)
        if want_sha is not None and h.hexdigest() != want_sha:
            raise IntegrityError("download corrupted: sha256 %s, the daemon sent %s"
                                 % (h.hexdigest(), want_sha), code="digest_mismatch")
        return total

    def stream_lines(self, method, path, payload, timeout, terminal=None):
        """Send JSON (none when payload is None) and yield each NDJSON line of
        the response as a dict, as it arrives.

        With ``terminal`` (a set of event types), the stream must end with
        one of them: a stream that ends, or breaks, before raises
        TransferError (the connection was cut; the run's outcome is
        unknown)."""
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        headers = self._headers({"Content-Type": "application/json", "Accept": "application/x-ndjson"}
                                if body is not None else {"Accept": "application/x-ndjson"})
        conn, resp = self._open(method, path, body, headers, timeout)
        done = False
        ended = False
        try:
            while True:
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise TransferError("connection lost during stream: %s" % e)
                if not line:
                    if terminal is not None and not ended:
                        raise TransferError("the stream ended without its terminal event "
                                            "(%s): the connection was cut"
                                            % " or ".join(sorted(terminal)))
                    break
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line.decode("utf-8"))
                except ValueError as e:
                    raise AirlockConnectionError("bad NDJSON line from airlockd: %s" % e)
                if terminal is not None and isinstance(event, dict):
                    ended = event.get("type") in terminal
                yield event
            done = True
        finally:
            # An abandoned or broken stream leaves unread bytes on the
            # connection: drop it rather than reuse it.
            if done:
                self._give_back(conn, resp)
            else:
                conn.close()
