#include "statedb.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Move path (and its -wal, -shm) out of the way, to path.bad-<ms>. */
static int set_aside(const char *path)
{
    char aside[4096];
    snprintf(aside, sizeof(aside), "%s.bad-%llu", path, (unsigned long long)now_wall_ms());
    if (rename(path, aside) < 0) {
        int r = -errno;
        log_error("store: move %s to %s: %s", path, aside, strerror(-r));
        return r;
    }
    char from[4096], to[4200];
    snprintf(from, sizeof(from), "%s-wal", path);
    snprintf(to, sizeof(to), "%s-wal", aside);
    if (rename(from, to) < 0 && errno != ENOENT)
        log_warn("store: move %s: %s", from, strerror(errno));
    snprintf(from, sizeof(from), "%s-shm", path);
    if (unlink(from) < 0 && errno != ENOENT)
        log_warn("store: remove %s: %s", from, strerror(errno));
    log_warn("store: --init-state: the old database is kept as %s; a new one is created", aside);
    return 0;
}

/* Run quick_check or integrity_check and check that it is an airlock
 * database: 0, or -EUCLEAN with why filled. */
static int check_db(sqlite3 *db, bool full, char *why, size_t whylen)
{
    sqlite3_stmt *st = NULL;
    const char *sql = full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        return -EUCLEAN;
    }
    int rc, r = 0;
    size_t used = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line && strcmp(line, "ok") == 0)
            continue;
        r = -EUCLEAN;
        if (used < whylen)
            used += (size_t)snprintf(why + used, whylen - used, "%s%s", used ? "; " : "", line ? line : "?");
    }
    if (rc != SQLITE_DONE) {
        r = -EUCLEAN;
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    if (r < 0)
        return r;
    /* an intact SQLite file that is not ours (or holds nothing) is not
     * this daemon's state either */
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'api_keys'", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) {
        snprintf(why, whylen, "it has no api_keys table: not an airlock state database");
        r = -EUCLEAN;
    }
    sqlite3_finalize(st);
    return r;
}

int statedb_open(const char *path, bool init_state, bool full_check, sqlite3 **out)
{
    sqlite3 *db = NULL;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT) {
        int r = -errno;
        log_error("store: stat %s: %s", path, strerror(-r));
        return r;
    }
    char why[1024] = "";
    int r = 0;
    if (exists && sb.st_size == 0) {
        snprintf(why, sizeof(why), "it is empty (0 bytes)");
        r = -EUCLEAN;
    }
    if (exists && r == 0) {
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK) {
            snprintf(why, sizeof(why), "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
            r = -EUCLEAN;
        } else {
            sqlite3_busy_timeout(db, 5000);
            uint64_t t0 = now_mono_ms();
            r = check_db(db, full_check, why, sizeof(why));
            if (r == 0)
                log_info("store: %s: %s passed in %llu ms", path, full_check ? "integrity_check" : "quick_check",
                         (unsigned long long)(now_mono_ms() - t0));
        }
        if (r < 0) {
            sqlite3_close(db);
            db = NULL;
        }
    }
    if (r < 0) {
        if (!init_state) {
            log_error("store: the state database %s is damaged: %s. It holds this daemon's API keys, sandbox "
                      "records and audit log, so airlockd will not replace it. Restore it from a backup "
                      "(docs/api.md, \"State and backups\"), or start once with --init-state to keep it aside "
                      "as %s.bad-<time> and begin with a new, empty state",
                      path, why, path);
            return -EUCLEAN;
        }
        log_warn("store: the state database %s is damaged: %s", path, why);
        if ((r = set_aside(path)) < 0)
            return r;
        exists = false;
    }
    if (!exists) {
        log_info("store: no state database at %s: creating a new one", path);
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 NULL);
        if (rc != SQLITE_OK) {
            log_error("store: create %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
            sqlite3_close(db);
            return -EIO;
        }
        sqlite3_busy_timeout(db, 5000);
    }
    *out = db;
    return 0;
}

