/* jail.h - internals of the jail backend (Linux namespaces + cgroups).
 *
 * One file per kernel concern, nsjail style; jail.c holds the sequence
 * and is called only through jail_backend_ops (no file here calls into it):
 *
 *   jail.c      init/fini, create/destroy: the parent's sequence, step by step
 *   plan.c      the plan: channels, mount options, the trees, built before the clone
 *   clone.c     the clone: the child's stack, the new namespaces, as the owner uid
 *   child.c     the child's sequence, clone to execveat of the agent
 *   report.c    jail_err (parent) and child_fail (child): how every file reports
 *   caps.c      capabilities: the daemon's, and the thread's around the clone
 *   userns.c    host uid range slots, uid_map/gid_map, becoming root inside,
 *               the start-up probe
 *   cgroup.c    v1/v2 detection and what both share; cgroup_v1.c, cgroup_v2.c
 *               each mode's files behind struct cgroup_impl (cgroup_impl.h)
 *   dynmods.c   cgroup2's favordynmods
 *   mnt.c       detached read-only trees, the new root, /dev, /proc, pivot_root
 *   net.c       loopback up in the empty network namespace, socket buffer caps,
 *               the egress proxy's listener in it (parent)
 *   rootfs.c    what the root of a template holds: /usr and a synthetic /etc
 *   layers.c    the per-sandbox overlays' layers
 *   anonlock.c  the locks on the host's one anonymous inode
 *   zygote.c    the airlock-zygote supervisor
 *
 * Two kinds of code live here and must not be mixed up:
 *  - parent code (daemon threads): may allocate, log, take locks;
 *  - child code (between clone and execveat, marked "child:"): runs in a
 *    fork of a multi-threaded process, so it may only make raw syscalls and
 *    read memory prepared before the clone (struct jail_plan). No malloc,
 *    no stdio, no glibc set*id wrappers (their cross-thread broadcast would
 *    wait forever for threads that do not exist in the child).
 */
#ifndef AIRLOCK_JAIL_H
#define AIRLOCK_JAIL_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/capability.h>

#include "backend.h"
#include "jail_shared.h"

/* Each sandbox owns 65536 host ids: sandbox id n -> JAIL_UID_BASE + slot*65536 + n. */
#define JAIL_UID_BASE 200000u
#define JAIL_UID_COUNT 65536u
/* 4096 ranges: 1,000 live sandboxes plus the warm pool and teardowns in
 * flight fit with room, and the highest id (200000 + 4096*65536) is still
 * far below 2^31. */
#define JAIL_SLOTS 4096
/* Host-wide: every daemon locks byte `slot` of this file (userns.c). */
#define JAIL_SLOT_LOCK_DIR "/run/airlock"
#define JAIL_SLOT_LOCK_FILE JAIL_SLOT_LOCK_DIR "/uid-slots.lock"
/* How long userns.c trusts its last /proc scan for foreign uid ranges. */
#define JAIL_HOST_SCAN_MS 2000
#define JAIL_USER_UID 1000 /* "user" inside the sandbox: owns /data and /home/user */

struct jail_zygote;

/* What the per-sandbox overlays are made of (layers.c): made once at init. */
struct jail_layers {
    int empty_fd;   /* a detached, empty, read-only tmpfs: every overlay's second layer */
    int devskel_fd; /* a detached read-only tmpfs with /dev's nodes, mount points and links */
};

struct jail_state {
    struct cgroup_ctx cg;
    struct jail_zygote *zygote; /* NULL: --no-zygote, or it could not be set up */
    struct jail_layers layers;
    int anon_lock_fd; /* anonlock.c: holds the anonymous inode's locks, or -1 */
    int agent_memfd; /* sealed copy of airlock-agent, fexecve'd by every sandbox */
    bool protect_agent; /* CAP_SYS_RESOURCE: may set the agent's oom_score_adj to -1000 */
    int dumpable;       /* PR_GET_DUMPABLE at init: restored after each clone (caps.c) */
    int nice;           /* the daemon's nice value at init: every agent runs at it, whatever
                           the priority of the thread that built it (the pool's is lower) */
    /* create/destroy run on the daemon's HTTP threads concurrently. */
    pthread_mutex_t slot_lock;
    unsigned next_slot; /* next-fit, so a freed range is not reused at once */
    bool slot_used[JAIL_SLOTS];
    bool host_busy[JAIL_SLOTS]; /* a host process owns an id of the range (cached scan) */
    uint64_t host_scan_ms;      /* when host_busy was taken; 0: never */
    int slot_lock_fd;           /* JAIL_SLOT_LOCK_FILE, -1 without */
};

struct backend_instance {
    char id[SANDBOX_ID_LEN + 1];
    struct cgroup_ctx cg; /* copy: oom_kills gets no state pointer */
    pid_t pid;  /* host pid of the agent (PID 1 of the sandbox) */
    int pidfd;  /* signals go through the pidfd: never a recycled pid */
    int slot;   /* uid range slot, -1 once released */
    uid_t host_base;
    bool reaped;
};

/* ---- the plan: everything the child needs, built by the parent ------------ */

#define JAIL_MAX_ETC_FILES 16 /* generated files and copies of the host's single files */
#define JAIL_MAX_ETC_LINKS 2  /* /etc/localtime, /etc/os-release */
#define JAIL_MAX_ETC_BINDS 16 /* overlays of the host's /etc directories */
/* Largest host file copied into a sandbox (/etc's files, the runner). */
#define JAIL_MAX_COPY_BYTES (1u << 20)
/* Each sandbox's devpts instance holds at most this many ptys: the pty pool
 * (kernel.pty.max) is one per host (docs/security.md, "Shared kernel objects"). */
#define JAIL_PTY_MAX 16

/* A host /etc entry that is a symlink into /usr (localtime -> zoneinfo,
 * os-release -> ../usr/lib/os-release): recreated as the same link, since
 * its target is in the sandbox's /usr overlay. */
struct jail_etc_link {
    char name[32];    /* "localtime" */
    char target[256]; /* what the host's link says */
};

struct jail_etc_file {
    char name[32];    /* relative to /etc */
    const char *data; /* owned by the plan (static or heap, read-only in the child) */
    size_t len;
};

/* A detached mount tree (open_tree(OPEN_TREE_CLONE), already read-only) that
 * the child attaches with move_mount. Opened by the parent as host root, so
 * the child, an unprivileged host uid, never has to walk host paths. A bind
 * through "/proc/self/fd/N" would not work: the fd's mount belongs to the
 * daemon's mount namespace and the kernel refuses binds across namespaces. */
struct jail_tree {
    char target[64]; /* relative to the new root: "usr", "etc/ld.so.cache" */
    int fd;
    bool is_dir;
};

struct jail_plan {
    /* child's ends */
    int control_fd; /* becomes fd 3 of the agent */
    int release_fd; /* read end: one byte = go, EOF = the daemon gave up */
    int release_wr; /* the parent's write end (struct jail_parent_fds owns it): the
                       child closes its inherited copy, or EOF could never come */
    int error_fd;   /* write end, CLOEXEC: EOF after execveat = success */
    int agent_fd;   /* the sealed memfd */
    int zygote_fd;  /* becomes fd 4 of the agent (--zygote-fd 4), or -1 */
    int memcg_usage_fd; /* the sandbox cgroup's memory usage file: fd 6 of the agent, or -1 */
    int memcg_stat_fd;  /* ... its memory.stat: fd 7 (sysview.c; the agent's meminfo.c) */

    char hostname[65];
    char memory_arg[24]; /* the agent's --memory-limit, in bytes */
    /* the sandbox's own view of its CPUs (sysview.c): the list
     * /sys/devices/system/cpu/{online,possible,present} show */
    char cpu_list[128]; /* "0", "0-1", "0,2-3" */
    char root_opts[64];  /* the new root tmpfs: only mount points and symlinks */
    char etc_opts[64];
    char scratch_opts[64]; /* the one tmpfs behind /tmp /data /home/user /dev/shm */

    struct jail_tree usr;  /* overlay of the template's /usr */
    struct jail_tree dev;  /* overlay of the /dev skeleton */
    struct jail_tree runner; /* overlay of a runner directory, or fd -1 */
    /* copies of the runner files (heap, the plan's): airlock_runner.py and,
     * when next to it, airlock_runner.R and airlock_runner.mjs */
    struct jail_runner_file {
        const char *name; /* under /opt/airlock */
        char *data;
        size_t len;
    } runner_files[3];
    size_t n_runner_files;
    char warm_arg[64];   /* the agent's --warm value, "" for none */
    char devpts_opts[96];
    struct jail_tree etc_binds[JAIL_MAX_ETC_BINDS];
    size_t n_etc_binds;
    struct jail_etc_file etc_files[JAIL_MAX_ETC_FILES];
    size_t n_etc_files;
    struct jail_etc_link etc_links[JAIL_MAX_ETC_LINKS];
    size_t n_etc_links;
    char *etc_heap[JAIL_MAX_ETC_FILES]; /* parent frees these */
};

/* ---- plan.c ---- */
/* The parent's ends of the channels to the child. */
struct jail_parent_fds {
    int control;    /* becomes *agent_fd */
    int release_wr; /* one byte releases the child */
    int error_rd;   /* failure record, or EOF once the agent is exec'd */
    int zygote;     /* our end of the agent's zygote channel, or -1 */
};

/* The descriptors of the plan that the parent closes: its copies of the
 * child's ends (the detached trees stay alive in the child through its
 * inherited copies). agent_fd is the state's memfd, not ours; release_wr is
 * the parent's own end, closed through struct jail_parent_fds. */
#define PLAN_NFDS (9 + JAIL_MAX_ETC_BINDS)

void plan_init(struct jail_plan *p, struct jail_parent_fds *pf);
/* Channels, mount options, the zygote channel, /usr, /etc and the runner. */
int plan_prepare(struct jail_state *st, const struct sandbox_spec *spec, struct jail_plan *p,
                 struct jail_parent_fds *pf, char *err, size_t errlen);
/* No child: close and free everything. */
void plan_release(struct jail_plan *p);
/* With a child running on the plan: its descriptors' numbers, to close by number. */
void plan_snapshot_fds(struct jail_plan *p, int out[PLAN_NFDS]);
void close_snapshot_fds(int snap[PLAN_NFDS]);
/* Once the child exec'd or is dead: free the rest. */
void plan_release_after_child(struct jail_plan *p);
void parent_fds_close(struct jail_parent_fds *pf);

/* ---- clone.c ---- */
struct clone_stack {
    void *base; /* guard page + stack, MAP_FAILED if none */
    size_t len;
};
int clone_stack_alloc(struct clone_stack *cs, char *err, size_t errlen);
void clone_stack_free(struct clone_stack *cs); /* only once the child has exec'd or is dead */
/* parent: clone(flags | CLONE_VM | CLONE_PIDFD) running fn(arg) on cs, as
 * owner for the clone alone (caps.c), signals blocked. The pid, or -errno
 * with the host settings that may forbid it in err. */
pid_t clone_child(const struct jail_state *st, unsigned long flags, uid_t owner, int (*fn)(void *), void *arg,
                  struct clone_stack *cs, int *pidfd, char *err, size_t errlen);

/* ---- child.c ---- */
/* child of a multi-threaded daemon: every handler back to SIG_DFL and nothing
 * blocked, so no daemon code runs in it and nothing ignored survives exec
 * (the sandbox init, the zygote). Raw syscalls only. */
/* The sandbox init's entry point (clone's fn, arg the plan): never returns. */
int child_main(void *arg);

/* ---- caps.c ---- */
/* Is cap in the calling thread's effective set? */
bool caps_have(int cap);
/* parent: the calling thread only takes host_base as its effective uid/gid
 * (with its capabilities kept), so a user namespace it creates is owned by
 * host_base. Restore right after the clone; restore aborts the daemon if it
 * cannot return the thread to uid 0 with its capabilities. */
struct caps_saved_ids {
    struct __user_cap_data_struct caps[2];
    int dumpable; /* the process's PR_GET_DUMPABLE, set by the caller */
};
int caps_become_owner(uid_t host_base, struct caps_saved_ids *saved, char *err, size_t errlen);
void caps_restore_root(const struct caps_saved_ids *saved);

/* ---- userns.c ---- */
/* Open the host-wide slot lock file (a failure only warns: 0 either way). */
int userns_slot_file_open(struct jail_state *st);
int userns_slot_alloc(struct jail_state *st);
/* The next userns_slot_alloc scans /proc again (tests). */
void userns_host_scan_invalidate(struct jail_state *st);
void userns_slot_free(struct jail_state *st, int slot);
uid_t userns_host_base(int slot);
int userns_write_maps(pid_t pid, uid_t host_base, char *err, size_t errlen);
int userns_child_become_root(struct jail_child_error *e); /* child */
/* At start: can this host create a user namespace owned by an unprivileged
 * uid? 0, or -errno with the host settings that may forbid it in err. */
int userns_probe(const struct jail_state *st, char *err, size_t errlen);

/* ---- layers.c ---- */
int layers_init(struct jail_layers *l, char *err, size_t errlen);
void layers_fini(struct jail_layers *l);
/* parent: a detached read-only (nosuid, nodev) overlay of the directory at
 * path with inodes of its own, to be attached at target. */
int layers_tree_ro(const struct jail_layers *l, const char *path, struct jail_tree *t, const char *target,
                   char *err, size_t errlen);
/* parent: the sandbox's /dev, an overlay of the skeleton (nosuid, noexec). */
int layers_dev(const struct jail_layers *l, struct jail_tree *t, char *err, size_t errlen);

/* ---- anonlock.c ---- */
/* Take (or wait in the background for) every lock on the host's one
 * anonymous inode; *fd holds them (-1 while another process does). */
int anonlock_hold(int *fd, char *err, size_t errlen);

/* ---- sysview.c ---- */
/* parent: the CPUs a sandbox of cpu_millis sees (cpu_millis rounded up to
 * whole CPUs, the first of the daemon's affinity), into p->cpu_list. */
void sysview_plan_cpus(struct jail_plan *p, uint32_t cpu_millis);
/* parent: p->memcg_*_fd opened read-only on the sandbox's cgroup, after it
 * was created. A failure leaves them -1: the agent then shows the limit
 * without usage. */
void sysview_plan_memcg(struct jail_plan *p, const struct cgroup_ctx *cg, const char *id);

/* ---- mnt.c ---- */
/* parent: warn when `sandboxes` full devpts instances would not fit in the
 * host's pty pool (kernel.pty.max - kernel.pty.reserve). */
void mnt_check_pty_pool(unsigned sandboxes);
/* child: *meminfo_fd is the read-write fd of the file bound over /proc/meminfo
 * (the agent's fd 5), kept open by the caller */
int mnt_build_root(const struct jail_plan *p, int *meminfo_fd, struct jail_child_error *e);
int mnt_pivot_root(struct jail_child_error *e);                          /* child */

/* ---- zygote.c ---- */
/* Start the supervisor thread that runs airlock-zygote (path) and restarts
 * it; warmup NULL leaves the zygote's default. Does not wait for it. */
int jail_zygote_start(struct jail_zygote **out, const char *path, const char *runner, const char *warmup,
                      char *err, size_t errlen);
void jail_zygote_stop(struct jail_zygote *z); /* kills and reaps it */
/* A channel for a new sandbox, if the zygote is ready: *ours for
 * jail_zygote_register, *agents for the agent's fd 4. -ENOTCONN if not. */
int jail_zygote_channel(struct jail_zygote *z, int *ours, int *agents);
/* Hand ours (always consumed), the agent's pidfd and the sandbox's cgroup
 * directories to the zygote. Never blocks. */
int jail_zygote_register(struct jail_zygote *z, int ours, int pidfd, const struct cgroup_ctx *cg, const char *id);
/* At daemon start: wait until the first zygote is ready or failed, at most
 * timeout_ms. true if it is ready. */
bool jail_zygote_wait_ready(struct jail_zygote *z, unsigned timeout_ms);
/* pid of the running, ready zygote, 0 if none */
pid_t jail_zygote_pid(struct jail_zygote *z);

/* ---- net.c ---- */
int net_loopback_up(struct jail_child_error *e);
/* child, in its own network namespace, before the new root: cap socket
 * buffer sizes there (host /proc still visible). */
int net_cap_buffers(struct jail_child_error *e); /* child */
/* parent: the egress proxy's listener (SOCK_STREAM) or the DNS resolver's
 * socket (SOCK_DGRAM) on 127.0.0.1:port in inst's network namespace */
int net_egress_listen(struct backend_instance *inst, int type, uint16_t port, int *fd);

/* ---- net_link.c ---- (parent: open egress's veth, docs/egress.md) */
int net_link_up(struct backend_instance *inst, const struct egress_link *l);
int net_link_down(struct backend_instance *inst, const struct egress_link *l, unsigned *closed);

/* ---- rootfs.c ---- */
/* Fill the plan's /usr tree, /etc contents and /etc binds for spec's template. */
int rootfs_prepare(struct jail_plan *p, const struct sandbox_spec *spec, const struct jail_layers *l, char *err,
                   size_t errlen);
/* parent: a copy of a host file of at most JAIL_MAX_COPY_BYTES (malloc'd). */
int rootfs_copy_file(const char *path, char **data, size_t *len, char *err, size_t errlen);
/* child: write len bytes to a new file rel (relative to the new root). */
int rootfs_child_write(const char *rel, const char *data, size_t len, mode_t mode, struct jail_child_error *e);
void rootfs_release(struct jail_plan *p);
/* child: write the generated /etc files into dir "etc" of the new root. */
int rootfs_write_etc(const struct jail_plan *p, struct jail_child_error *e);

#endif
