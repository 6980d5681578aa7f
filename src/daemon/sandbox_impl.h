/* sandbox_impl.h - struct sandbox, shared by the two files that own it:
 * build.c makes and frees one (backend instance, agent connection), and
 * registry.c gives it an owner, a lifetime and a place in the live list.
 * Nobody else includes this: the rest of the daemon uses the accessors of
 * build.h and the registry's functions (registry.h). */
#ifndef AIRLOCK_SANDBOX_IMPL_H
#define AIRLOCK_SANDBOX_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_client.h"
#include "backend.h"
#include "daemon.h"
#include "store.h"

enum sb_state { SB_RUNNING, SB_DESTROYING, SB_DESTROYED };

struct sandbox {
    struct daemon *d;
    char id[SANDBOX_ID_LEN + 1];

    /* set by the build, immutable afterwards */
    char template_name[64];
    /* valid while the sandbox is live: a template with live sandboxes
     * cannot be removed (ERR_TEMPLATE_IN_USE) */
    const struct template_info *tmpl;
    bool egress;
    char region[64];
    unsigned memory_mb;
    double cpus;
    int isolation;                  /* enum isolation */
    const struct backend_ops *bk;   /* the backend it runs on, and its state */
    void *bk_state;
    struct agent_conn *conn;
    /* background processes (proctab.h): made with the sandbox, freed
     * before conn, whose requests its pumps hold */
    struct proctab *procs;
    /* set by the agent reader when the connection dies (build.c), read by
     * the pool and the reaper: atomic, so neither needs the other's lock */
    atomic_bool crashed;

    /* set by the registry when a create takes the sandbox, immutable
     * afterwards */
    uint64_t created_ms;
    json_t *env;
    json_t *metadata;
    char key_id[KEY_ID_LEN + 1];
    /* fork families: set by a fork before the child is visible (parent
     * and family), or on the parent by its first fork (family, under the
     * registry lock: the parent is live then) */
    char parent_id[SANDBOX_ID_LEN + 1];
    char family_id[SANDBOX_ID_LEN + 1];

    /* the backend instance; destroy frees it while requests may still ask
     * for oom_kills, so it is guarded by its own lock */
    pthread_mutex_t inst_lock;
    struct backend_instance *inst;
    /* a fork is copying inst (build.c, sandbox_build_fork): it runs without
     * inst_lock (the parent's other requests go on meanwhile), so destroy
     * and a second fork wait on inst_cond until it is over. Both under
     * inst_lock. Backend calls that drive the VMM itself (QMP) must wait
     * for it the same way. */
    bool forking;
    pthread_cond_t inst_cond;

    /* the allow-list proxy (egress_proxy.h), NULL when sealed: set by the
     * create before the sandbox is visible, shut down with the backend,
     * freed with the sandbox (the log stays readable until then) */
    struct egress_proxy *egress_px;
    /* open egress (mode 3, egress_net.h): the link and the resolver, present
     * while the policy is the open one; changed under egress_lock, which
     * serialises runtime changes (build.c) */
    pthread_mutex_t egress_lock;
    struct egress_dns *egress_dns;
    struct egress_link egress_link;
    bool egress_linked;

    /* guarded by the registry lock */
    unsigned refs;
    enum sb_state state;
    unsigned timeout_s;
    uint64_t expires_ms; /* wall clock, like the API's expires_at */
    /* paused (registry.c, sandbox_pause): the lifetime clock stands still,
     * remaining_ms of it left; --max-paused ends it at pause_deadline_ms.
     * Pause and resume themselves run under inst_lock, one at a time and
     * never during the backend's destroy. */
    bool paused;
    uint64_t paused_ms;         /* wall clock */
    uint64_t pause_deadline_ms; /* wall clock */
    uint64_t remaining_ms;
    char destroy_reason[32];
    uint64_t destroyed_ms;
    char destroy_key[KEY_ID_LEN + 1]; /* who asked ("" the daemon), for a late record */
    /* a destroyed sandbox stays on the dying list (with the registry's
     * reference) until both are true: GET and the other calls find it there
     * and answer "destroying" / 410 while it is torn down, and "destroyed"
     * from memory while its record waits for the state store */
    bool torn_down;
    bool recorded;
    struct sandbox *next; /* live list, or dying list */
};

#endif
