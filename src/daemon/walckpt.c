/* walckpt.c - checkpoint the store's write-ahead log on a thread of its own.
 *
 * SQLite's default runs a checkpoint in whichever commit pushes the WAL past
 * 1,000 pages, i.e. in a request thread: an fsync of the WAL and one of the
 * database, measured at 12-14 ms here, in the middle of a create that
 * otherwise takes 0.1 ms. Here the store's connection gets a WAL hook instead
 * (which also turns the automatic checkpoint off) that only notes the WAL's
 * size and wakes this thread, and the thread checkpoints through a second
 * connection of its own. A PASSIVE checkpoint takes no lock a writer waits
 * for, so commits go on while it copies and syncs.
 */
#include "walckpt.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define WALCKPT_FRAMES 1000  /* SQLite's own automatic threshold */
#define WALCKPT_PERIOD_MS 1000 /* and at least this often while anything was written */

struct walckpt {
    sqlite3 *main_db; /* the store's connection: only its hook is ours */
    sqlite3 *db;      /* ours, used by the thread alone */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    /* guarded by lock */
    int frames; /* WAL frames at the last commit, 0 after a checkpoint */
    bool stop;
    int last_rc; /* the previous checkpoint's result: log changes only */
};

/* Called by SQLite in the committing thread, with the store's lock held:
 * note and wake, nothing more. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct walckpt *w = arg;
    pthread_mutex_lock(&w->lock);
    w->frames = frames;
    if (frames >= WALCKPT_FRAMES)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return SQLITE_OK;
}

/* False when it should be tried again next period. */
static bool checkpoint(struct walckpt *w)
{
    uint64_t t0 = now_mono_us();
    int log_frames = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(w->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        /* another checkpoint at that moment (a closing connection's, a
         * backup's): the next period retries, nothing to report */
        log_debug("store: checkpoint: %s; next period", sqlite3_errstr(rc));
        return false;
    }
    if (rc != SQLITE_OK && rc != w->last_rc)
        log_warn("store: checkpoint: %s; retried in the background", sqlite3_errmsg(w->db));
    else if (rc == SQLITE_OK && w->last_rc != SQLITE_OK)
        log_info("store: checkpoints work again");
    w->last_rc = rc;
    log_debug("store: checkpoint of %d WAL frames (%d copied) in %.3f ms", log_frames, done,
              (double)(now_mono_us() - t0) / 1000.0);
    return rc == SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct walckpt *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (w->frames < WALCKPT_FRAMES) {
            uint64_t deadline = now_mono_ms() + WALCKPT_PERIOD_MS;
            struct timespec ts = mono_deadline(deadline);
            (void)pthread_cond_timedwait(&w->wake, &w->lock, &ts);
        }
        if (w->stop || w->frames == 0)
            continue;
        w->frames = 0;
        pthread_mutex_unlock(&w->lock);
        bool ok = checkpoint(w);
        pthread_mutex_lock(&w->lock);
        if (!ok && w->frames == 0)
            w->frames = 1; /* not a commit's count: retried at the next period */
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int walckpt_start(const char *path, sqlite3 *main_db, struct walckpt **out)
{
    *out = NULL;
    struct walckpt *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->main_db = main_db;
    int rc = sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("store: open %s for checkpoints: %s", path, w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
        sqlite3_close(w->db);
        free(w);
        return -EIO;
    }
    /* a connection that has not read the database yet does not know it
     * is in WAL mode, and its checkpoints do nothing (-1 frames) */
    char *msg = NULL;
    if (sqlite3_exec(w->db, "PRAGMA journal_mode=WAL;", NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: checkpoint connection: %s", msg ? msg : sqlite3_errmsg(w->db));
        sqlite3_free(msg);
        sqlite3_close(w->db);
        free(w);
        return -EIO;
    }
    pthread_mutex_init(&w->lock, NULL);
    cond_init_monotonic(&w->wake);
    int r = pthread_create(&w->thread, NULL, ckpt_main, w);
    if (r != 0) {
        log_error("store: start the checkpoint thread: %s", strerror(r));
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        sqlite3_close(w->db);
        free(w);
        return -r;
    }
    (void)pthread_setname_np(w->thread, "checkpoint");
    /* from here on commits no longer checkpoint themselves */
    sqlite3_wal_hook(main_db, on_commit, w);
    *out = w;
    return 0;
}

void walckpt_stop(struct walckpt *w)
{
    if (!w)
        return;
    /* give the store its own automatic checkpoints back (its final close
     * checkpoints and removes the WAL) */
    sqlite3_wal_autocheckpoint(w->main_db, WALCKPT_FRAMES);
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    sqlite3_close(w->db);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
