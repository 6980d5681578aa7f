/* faultinj.c - test-only fault injection (see faultinj.h for AIRLOCK_FAULT).
 *
 * SQLite's own test culture fails the Nth allocation or I/O of every layer
 * and checks the result is a clean error; this is that, for airlockd, driven
 * from outside by tests/e2e/test_faults.py. Only built with
 * -Dfault_injection=true: nothing here may ever be in a release daemon. */
#include "faultinj.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "log.h"
#include "util.h"

enum fault_kind { F_NONE, F_SQLITE_WRITE, F_SQLITE_FULL, F_SQLITE_SYNC, F_SQLITE_READ, F_AGENT_WRITE, F_JSON_ALLOC };

static const char *const KIND_NAMES[] = {
    [F_SQLITE_WRITE] = "sqlite_write", [F_SQLITE_FULL] = "sqlite_full", [F_SQLITE_SYNC] = "sqlite_sync",
    [F_SQLITE_READ] = "sqlite_read",   [F_AGENT_WRITE] = "agent_write", [F_JSON_ALLOC] = "json_alloc",
};

static enum fault_kind kind;
static unsigned long fail_at; /* the Nth operation of kind fails (1-based) */
static bool persist;          /* ... and every one after it */
static bool from_start;       /* count from process start, not from serving */
static atomic_bool armed;
static atomic_ulong count;

/* Is this operation of kind k the one to fail? Counts only while armed. */
static bool should_fail(enum fault_kind k)
{
    if (k != kind || !atomic_load(&armed))
        return false;
    unsigned long n = atomic_fetch_add(&count, 1) + 1;
    if (n == fail_at || (persist && n > fail_at)) {
        /* stderr, not log_*: log_msg may allocate (json_alloc) */
        fprintf(stderr, "faultinj: failing %s #%lu (injected)\n", KIND_NAMES[k], n);
        return true;
    }
    return false;
}

void faultinj_arm(void)
{
    if (kind != F_NONE && !atomic_exchange(&armed, true))
        log_warn("faultinj: armed: %s #%lu%s will fail", KIND_NAMES[kind], fail_at, persist ? " and after" : "");
}

int faultinj_agent_write(void) { return should_fail(F_AGENT_WRITE) ? -EIO : 0; }

/* ---- jansson's allocations */

static void *fi_json_malloc(size_t n) { return should_fail(F_JSON_ALLOC) ? NULL : malloc(n); }

/* ---- a VFS in front of the default one: every SQLite file passes through */

struct fi_file {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped VFS's file, right after this struct */
};

static sqlite3_vfs *real_vfs;
#define REAL(f) (((struct fi_file *)(f))->real)

static int fi_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }

static int fi_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    if (should_fail(F_SQLITE_READ))
        return SQLITE_IOERR_READ;
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int fi_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    if (should_fail(F_SQLITE_WRITE))
        return SQLITE_IOERR_WRITE;
    if (should_fail(F_SQLITE_FULL))
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int fi_truncate(sqlite3_file *f, sqlite3_int64 size) { return REAL(f)->pMethods->xTruncate(REAL(f), size); }

static int fi_sync(sqlite3_file *f, int flags)
{
    if (should_fail(F_SQLITE_SYNC))
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int fi_file_size(sqlite3_file *f, sqlite3_int64 *size) { return REAL(f)->pMethods->xFileSize(REAL(f), size); }
static int fi_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int fi_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int fi_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int fi_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int fi_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int fi_device_chars(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int fi_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int fi_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void fi_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int fi_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int fi_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int fi_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), off, p); }

static const sqlite3_io_methods FI_IO = {
    .iVersion = 3,
    .xClose = fi_close,
    .xRead = fi_read,
    .xWrite = fi_write,
    .xTruncate = fi_truncate,
    .xSync = fi_sync,
    .xFileSize = fi_file_size,
    .xLock = fi_lock,
    .xUnlock = fi_unlock,
    .xCheckReservedLock = fi_check_reserved,
    .xFileControl = fi_file_control,
    .xSectorSize = fi_sector_size,
    .xDeviceCharacteristics = fi_device_chars,
    .xShmMap = fi_shm_map,
    .xShmLock = fi_shm_lock,
    .xShmBarrier = fi_shm_barrier,
    .xShmUnmap = fi_shm_unmap,
    .xFetch = fi_fetch,
    .xUnfetch = fi_unfetch,
};

static int fi_open(sqlite3_vfs *vfs UNUSED, const char *name, sqlite3_file *file, int flags,
                   int *out_flags)
{
    struct fi_file *f = (struct fi_file *)file;
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    /* the unix VFS's files have the version 3 methods FI_IO forwards to */
    f->base.pMethods = f->real->pMethods ? &FI_IO : NULL;
    return rc;
}

static sqlite3_vfs fi_vfs;

static int fi_delete(sqlite3_vfs *v UNUSED, const char *name, int sync_dir)
{
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}
static int fi_access(sqlite3_vfs *v UNUSED, const char *name, int flags, int *out)
{
    return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int fi_full_pathname(sqlite3_vfs *v UNUSED, const char *name, int n, char *out)
{
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int parse_spec(const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return -EINVAL;
    for (size_t k = 1; k < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]); k++)
        if (strlen(KIND_NAMES[k]) == (size_t)(colon - spec) && strncmp(spec, KIND_NAMES[k], colon - spec) == 0)
            kind = (enum fault_kind)k;
    char *end;
    errno = 0;
    fail_at = strtoul(colon + 1, &end, 10);
    persist = *end == '+';
    if (persist)
        end++;
    from_start = strcmp(end, "@start") == 0;
    if (kind == F_NONE || errno || fail_at == 0 || end == colon + 1 || (*end && !from_start))
        return -EINVAL;
    return 0;
}

/* At load, before main: the VFS must be the default before the store opens
 * its database, and jansson's allocator is process-wide. */
__attribute__((constructor)) static void faultinj_init(void)
{
    const char *spec = getenv("AIRLOCK_FAULT");
    if (!spec || !*spec)
        return;
    if (parse_spec(spec) < 0) {
        fprintf(stderr, "faultinj: AIRLOCK_FAULT=%s: expected KIND:N[+][@start] (see faultinj.h)\n", spec);
        exit(2);
    }
    if (from_start) {
        atomic_store(&armed, true);
        fprintf(stderr, "faultinj: armed at start: %s #%lu%s will fail\n", KIND_NAMES[kind], fail_at,
                persist ? " and after" : "");
    }
    if (kind == F_JSON_ALLOC) {
        json_set_alloc_funcs(fi_json_malloc, free);
        return;
    }
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs) {
        fprintf(stderr, "faultinj: no default SQLite VFS to wrap\n");
        exit(2);
    }
    fi_vfs = *real_vfs;
    fi_vfs.zName = "airlock-faultinj";
    fi_vfs.pNext = NULL;
    fi_vfs.szOsFile = (int)sizeof(struct fi_file) + real_vfs->szOsFile;
    fi_vfs.xOpen = fi_open;
    fi_vfs.xDelete = fi_delete;
    fi_vfs.xAccess = fi_access;
    fi_vfs.xFullPathname = fi_full_pathname;
    /* the rest (dlopen, randomness, sleep, time) take no file: the copy of
     * the real VFS's pointers is enough, they ignore the vfs argument's
     * identity except pAppData, which the copy keeps */
    int rc = sqlite3_vfs_register(&fi_vfs, 1);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "faultinj: register the SQLite VFS: %s\n", sqlite3_errstr(rc));
        exit(2);
    }
}
