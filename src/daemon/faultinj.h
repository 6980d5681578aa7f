/* faultinj.h - test-only fault injection (tests/e2e/test_faults.py).
 *
 * Compiled in only with `meson setup -Dfault_injection=true` (the ASan build
 * of `make build-asan`); a release daemon has none of it: the hooks below are
 * then empty inline functions and AIRLOCK_FAULT is never read.
 *
 * AIRLOCK_FAULT=KIND:N[+][@start] makes the Nth operation of KIND fail
 * (with "+": the Nth and every later one, a disk that stays full), counted
 * from the moment the daemon starts serving (faultinj_arm), or with
 * "@start" from the process's start (opening and checking the store,
 * recovery). KIND is one of
 *   sqlite_write  a write to any SQLite file fails with SQLITE_IOERR_WRITE
 *   sqlite_full   ... with SQLITE_FULL
 *   sqlite_sync   an fsync of any SQLite file fails (SQLITE_IOERR_FSYNC)
 *   sqlite_read   a read of any SQLite file fails (SQLITE_IOERR_READ)
 *   agent_write   a frame sent to a sandbox's agent fails as a write error
 *   json_alloc    an allocation made by jansson (every JSON body, reply,
 *                 record and agent message) returns NULL
 * SQLite's files pass through a wrapping VFS registered as the default at
 * load time, so the store needs no hook. */
#ifndef AIRLOCK_FAULTINJ_H
#define AIRLOCK_FAULTINJ_H

#ifdef AIRLOCK_FAULT_INJECTION
/* Start counting (http_start, once the daemon serves). */
void faultinj_arm(void);
/* 0, or -EIO when this write to an agent is the one to fail. */
int faultinj_agent_write(void);
#else
static inline void faultinj_arm(void) {}
static inline int faultinj_agent_write(void) { return 0; }
#endif

#endif
