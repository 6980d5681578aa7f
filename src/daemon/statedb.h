/* statedb.h - find, check and open the state database file: the first
 * step of store_open (store.c), and the only place that decides what an
 * existing file may be.
 *
 *   absent                 a first start: created, and logged
 *   0 bytes, not SQLite,   refused (-EUCLEAN, logged with what is wrong and
 *   not airlock's, or      what to do), the file left as it is; with
 *   failing the check      init_state kept aside as <path>.bad-<unix ms>
 *                          (and its WAL) and a new one created
 *
 * The check is PRAGMA quick_check, or integrity_check with full_check.
 * Never silently replaced: a 0-byte file that SQLite would happily treat
 * as a new, empty database is this daemon's keys, records and audit log
 * gone. */
#ifndef AIRLOCK_STATEDB_H
#define AIRLOCK_STATEDB_H

#include <stdbool.h>

#include <sqlite3.h>

/* 0 and an open read-write connection (busy timeout set), or -errno. */
int statedb_open(const char *path, bool init_state, bool full_check, sqlite3 **out);

#endif
