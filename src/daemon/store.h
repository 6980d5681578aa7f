/* store.h - airlockd's persistent state in SQLite (<state-dir>/airlock.db).
 *
 *   api_keys   (id, name, hash, admin, created_at, revoked)   SHA-256 hex only
 *   sandboxes  (id, state, template, egress, region, memory_mb, cpus,
 *               timeout_s, created_at, expires_at, destroyed_at,
 *               destroy_reason, metadata, agent_pid, key_id, isolation,
 *               parent_id, family_id)
 *   audit      (ts, key_id, action, sandbox_id, detail, hash, outcome)
 *   meta       (k, v)   the write probe (store_probe)
 *   templates  (name, spec_hash, tree_hash, built_at, manifest)   manifest = JSON
 *
 * One connection in WAL mode, every statement prepared once at open, all of
 * them used under one mutex (SQLite calls are short; the daemon's slow work is
 * in the sandboxes, not here). Times are Unix milliseconds.
 * Functions return 0 or -errno (-ENOENT: no such row, -ENOSPC: the disk is
 * full, -EIO: SQLite failed; logged here with the SQLite message since only
 * this file knows it).
 *
 * Every state change takes the audit record that goes with it and writes
 * both in one transaction: either both are in the database or neither is
 * (the caller then refuses the action, 503 audit_unavailable). A failed write
 * marks the store unwritable (store_health) until a write succeeds again.
 *
 * The audit log is a hash chain: each row's hash is SHA-256 of the previous
 * row's hash and the row's fields (store.c, audit_hash). Retention
 * (store_opts) drops the oldest rows and appends an "audit_checkpoint" row
 * naming how many were dropped and the hash of the last one, which is where
 * the chain of what remains starts (store_audit_verify). A run's outcome
 * (exit code, completed) is not part of the chain: it is written after the
 * run, into the row the run's start wrote. */
#ifndef AIRLOCK_STORE_H
#define AIRLOCK_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define KEY_ID_LEN 20   /* "key_" + 16 hex */
#define KEY_HASH_LEN 64 /* sha256 hex */

struct store;

struct store_opts {
    /* The database exists but is empty (0 bytes), not a database, or
     * damaged: set it aside (airlock.db.bad-<ms>) and create a new one,
     * instead of refusing to start. */
    bool init_state;
    bool full_check;            /* PRAGMA integrity_check and the audit chain, not quick_check */
    uint64_t audit_max_rows;    /* 0: no limit by count */
    uint64_t audit_max_age_ms;  /* 0: no limit by age */
};

/* Open (or, when the file is absent, create) <dir>/airlock.db. An existing
 * file is checked first (quick_check, or the full check); -EUCLEAN with the
 * reason and what to do logged when it is empty or damaged (unless
 * opts->init_state). opts NULL: defaults (no retention). */
int store_open(const char *dir, const struct store_opts *opts, struct store **out);
void store_close(struct store *s);

/* What goes to the audit log with a state change. detail borrowed, may be
 * NULL. */
struct audit_rec {
    const char *key_id;
    const char *action;
    const char *sandbox_id;
    json_t *detail;
};

/* {"writable","error"?,"db_bytes","audit_rows","audit_dropped"}; a store
 * marked unwritable tries one write (the meta probe) first, so that space
 * freed since is noticed. */
json_t *store_health(struct store *s);
bool store_writable(struct store *s);
/* The audit chain from its start (the newest checkpoint) to its end: 0, or
 * -EBADMSG with the first broken row named in why. *rows: rows checked. */
int store_audit_verify(struct store *s, uint64_t *rows, char *why, size_t whylen);
void store_close(struct store *s);

/* ---- keys */
struct key_info {
    char id[KEY_ID_LEN + 1];
    bool admin;
};

int store_key_insert(struct store *s, const char *id, const char *name, const char *hash, bool admin,
                     uint64_t created_ms, const struct audit_rec *audit);
/* Find a non-revoked key by hash: an indexed lookup, then a constant-time
 * comparison of the row's hash (store.c says why that is enough). 0,
 * -ENOENT. */
int store_key_find(struct store *s, const char *hash, struct key_info *out);
int store_key_count(struct store *s, unsigned *count);
/* {"keys":[{"id","name","admin","created_at","revoked"}]} */
int store_key_list(struct store *s, json_t **out);
/* Revoke a non-revoked key. 0, -ENOENT. */
int store_key_revoke(struct store *s, const char *id, const struct audit_rec *audit);

/* ---- sandboxes */
struct sandbox_record {
    char id[64];
    char state[16];         /* "running" | "paused" | "destroyed" (live ones also "destroying") */
    char template_name[64];
    bool egress;
    char isolation[8];      /* "jail" | "vm" */
    char region[64];
    unsigned memory_mb;
    double cpus;
    unsigned timeout_s;
    uint64_t created_ms;
    uint64_t expires_ms;
    uint64_t destroyed_ms;  /* 0 while running */
    char destroy_reason[32];/* "" while running */
    char *metadata;         /* JSON text, owned (free with store_record_clear) */
    int agent_pid;
    char key_id[KEY_ID_LEN + 1];
    /* a paused live sandbox only (not stored): when it paused, and when
     * --max-paused destroys it */
    uint64_t paused_ms;
    uint64_t pause_deadline_ms;
    char parent_id[64];     /* "" unless forked: the sandbox it was forked from */
    char family_id[64];     /* "" unless in a family: the root of its fork tree */
};

void store_record_clear(struct sandbox_record *r);
int store_sandbox_insert(struct store *s, const struct sandbox_record *r, const struct audit_rec *audit);
int store_sandbox_get(struct store *s, const char *id, struct sandbox_record *out);
int store_sandbox_set_expiry(struct store *s, const char *id, unsigned timeout_s, uint64_t expires_ms,
                             const struct audit_rec *audit);
int store_sandbox_set_destroyed(struct store *s, const char *id, const char *reason, uint64_t when_ms,
                                const struct audit_rec *audit);
/* Pause (state "paused") or resume ("running"), with the lifetime's end
 * expires_ms (a pause keeps it; a resume moves it by the time paused). */
int store_sandbox_set_paused(struct store *s, const char *id, bool paused, uint64_t expires_ms,
                             const struct audit_rec *audit);
/* Startup recovery: mark every "running" (or "paused") record destroyed with `reason`, and
 * audit each one. *count gets how many. */
int store_sandbox_destroy_all_running(struct store *s, const char *reason, uint64_t when_ms, unsigned *count);

/* ---- audit. detail is a JSON object (borrowed, may be NULL). The audit
 * log fails closed: callers write the record before the action and refuse
 * the action when it cannot be written. */
int store_audit(struct store *s, const char *key_id, const char *action, const char *sandbox_id, json_t *detail);
/* The same, giving the row's id for store_audit_outcome. */
int store_audit_begin(struct store *s, const struct audit_rec *a, int64_t *row);
/* Merge outcome (an object, borrowed) into the detail row `row` shows
 * (stored apart from the chained fields). */
int store_audit_outcome(struct store *s, int64_t row, json_t *outcome);
/* {"events":[{"ts","action","key_id","detail"}]} oldest first */
int store_audit_list(struct store *s, const char *sandbox_id, json_t **out);

/* "2026-11-26T22:23:58Z" (with_ms: "...58.123Z"); buf >= 32 bytes. */
void format_time(uint64_t ms, bool with_ms, char *buf, size_t len);

/* Templates: one row per name; the manifest (JSON text) is the record
 * (templates.c). put replaces; list gives {"templates":[manifest...]};
 * delete: 0 or -ENOENT. */
int store_template_put(struct store *s, const char *name, const char *spec_hash, const char *tree_hash,
                       uint64_t built_at_ms, const char *manifest);
int store_template_list(struct store *s, json_t **out);
int store_template_delete(struct store *s, const char *name);

#endif
