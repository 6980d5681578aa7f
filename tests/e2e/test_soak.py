"""Soak: the state database stays bounded under a steady load (issue 11).

`make test` runs it for AIRLOCK_SOAK_S seconds (default 30); `make soak`
for 600. The load is what a busy agent does: many code runs in one
sandbox, and sandboxes created, used and closed. What must hold: the audit
log stays at --audit-max-rows (give or take one pruning period), the
records of destroyed sandboxes go with their audit trail, what remains
verifies (a restart with --check-integrity walks the chain), and nothing
the load did is lost from what remains. Fails without retention: the
audit log only grows (~230 bytes per request)."""

import os
import sqlite3
import time

from e2e_support import Daemon, stop_and_check

SOAK_S = float(os.environ.get("AIRLOCK_SOAK_S", "30"))
MAX_ROWS = 500
PRUNE_SLACK = 64 + 2  # store.c: retention runs every 64 events, plus its checkpoint


def _state_bytes(d):
    return sum(os.path.getsize(d.state_dir / n) for n in ("airlock.db", "airlock.db-wal")
               if (d.state_dir / n).exists())


def _count(d, sql):
    c = sqlite3.connect("file:%s?mode=ro" % (d.state_dir / "airlock.db"), uri=True)
    try:
        return c.execute(sql).fetchone()[0]
    finally:
        c.close()


def test_soak_state_stays_bounded(tmp_path):
    d = Daemon(tmp_path / "d", extra_args=["--audit-max-rows", str(MAX_ROWS), "--rate-limit", "0",
                                           "--max-concurrent-requests", "0"])
    d.start()
    try:
        keep = d.sandbox(timeout=int(SOAK_S) + 600)
        keep.run_code("n = 0")
        runs = cycles = 0
        max_rows = max_records = 0
        sizes = []
        db_sizes = []  # (seconds in, bytes of the database file)
        t0 = time.monotonic()
        while time.monotonic() - t0 < SOAK_S:
            for _ in range(20):
                keep.run_code("n += 1")
                runs += 1
            with d.sandbox(timeout=120) as s:
                s.run_code("x = 1")
                s.exec(["true"])
                s.set_timeout(60)
            cycles += 1
            h = d.request("GET", "/v1/healthz?full=1")[3]
            assert h["status"] == "ok", h
            max_rows = max(max_rows, h["store"]["audit_rows"])
            max_records = max(max_records, _count(d, "SELECT count(*) FROM sandboxes"))
            sizes.append(_state_bytes(d))
            db_sizes.append((time.monotonic() - t0, os.path.getsize(d.state_dir / "airlock.db")))
            if os.environ.get("AIRLOCK_SOAK_VERBOSE"):
                print(cycles, os.path.getsize(d.state_dir / "airlock.db"), os.path.getsize(d.state_dir / "airlock.db-wal"))
        h = d.request("GET", "/v1/healthz?full=1")[3]
        print("soak %.0f s: %d runs, %d sandbox cycles, %d events dropped; audit rows at most %d, "
              "sandbox records at most %d; state %d -> %d bytes (max %d)"
              % (SOAK_S, runs, cycles, h["store"]["audit_dropped"], max_rows, max_records,
                 sizes[0], sizes[-1], max(sizes)))
        assert h["store"]["audit_dropped"] > 0, "the soak did not reach the retention limit"
        assert max_rows <= MAX_ROWS + PRUNE_SLACK, max_rows
        # each cycle leaves one record and ~6 events: records go with their trail
        assert max_records <= MAX_ROWS // 4 + 2, max_records
        # nothing the load did is missing from what remains: the REPL saw
        # every run, and the newest events are the newest runs
        assert keep.run_code("n").text == str(runs)
        # the database file stops growing once retention runs: what it has
        # after a third of the soak is what it keeps (the WAL is capped by
        # journal_size_limit when it restarts)
        third = max(b for t, b in db_sizes if t <= SOAK_S / 3)
        assert db_sizes[-1][1] <= third + 64 * 1024, (third, db_sizes[-1])
        keep.close()
    finally:
        if d.proc.poll() is None:
            stop_and_check(d)
    # what remains verifies from the newest checkpoint
    d.extra_args += ["--check-integrity"]
    d.start()
    assert "audit chain verified" in d.log_text()
    stop_and_check(d)
