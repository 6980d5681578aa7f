/* jail_shared.h - the parts of the jail backend the vm backend's jailer
 * (src/vm/spawn.c) uses too: cgroups (cgroup*.c), failure reports from a
 * child between clone and exec (report.c), and the child's signal reset
 * (child.c). One jail, two kinds of prisoner: the sandbox's agent and the
 * VMM that runs a sandbox's guest.
 */
#ifndef AIRLOCK_JAIL_SHARED_H
#define AIRLOCK_JAIL_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
/* cgroup v1: TCP buffer memory a sandbox may hold, a quarter of its memory
 * limit but at least this (loopback servers need some). */
#define CGROUP_TCP_MIN (16ull << 20)
#define CGROUP_PARENT "airlock" /* default; the daemon's backend scope overrides it */

enum cgroup_mode { CGROUP_V1 = 1, CGROUP_V2 = 2 };

/* Which cgroup tree this daemon owns: v1/v2, and the parent directory's name
 * under each hierarchy root. */
struct cgroup_ctx {
    enum cgroup_mode mode;
    char parent[32];
};

/* What the child reports through error_fd before _exit(127). Smaller than
 * PIPE_BUF, so the one write is atomic. */
struct jail_child_error {
    int err; /* positive errno */
    char op[32];
    char path[220];
};

/* ---- report.c ---- */
/* child: record a failure; returns -err so callers can `return child_fail(...)`. */
int child_fail(struct jail_child_error *e, const char *op, const char *path, int err);
/* parent: format "op path: strerror" into err; returns r (negative errno). */
int jail_err(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- cgroup.c ---- */
struct cgroup_limits {
    uint64_t memory_bytes; /* 0 = unlimited */
    uint32_t cpu_millis;   /* 0 = unlimited */
    uint32_t pids_max;     /* 0 = unlimited */
};
int cgroup_detect(enum cgroup_mode *mode, char *err, size_t errlen);
int cgroup_init_parents(const struct cgroup_ctx *cg, char *err, size_t errlen);
/* Kill and remove every <parent>/<id> cgroup. Returns how many, or -errno. */
int cgroup_recover(const struct cgroup_ctx *cg);
/* At clean shutdown: remove this daemon's (now empty) parent cgroups, so
 * daemons with their own parents (tests) leave nothing behind. */
void cgroup_remove_parents(const struct cgroup_ctx *cg);
int cgroup_create(const struct cgroup_ctx *cg, const char *id, const struct cgroup_limits *lim, char *err, size_t errlen);
int cgroup_add_pid(const struct cgroup_ctx *cg, const char *id, pid_t pid, char *err, size_t errlen);
/* Kill every process, wait until empty, rmdir. Safe on a missing cgroup. */
int cgroup_destroy(const struct cgroup_ctx *cg, const char *id);
/* Freeze (pause) or thaw (resume) every process of the sandbox: v1's
 * freezer.state, v2's cgroup.freeze; returns once the kernel reports it
 * done. 0, or -errno with what failed in err. */
int cgroup_set_frozen(const struct cgroup_ctx *cg, const char *id, bool frozen, char *err, size_t errlen);
/* If the sandbox is frozen: SIGKILL its processes and thaw it, so they die
 * (destroy of a paused sandbox). 0 when it was not frozen. */
int cgroup_kill_frozen(const struct cgroup_ctx *cg, const char *id);
int cgroup_oom_kills(const struct cgroup_ctx *cg, const char *id, uint64_t *count);
/* Memory charged to the sandbox's memory cgroup now, in bytes. */
/* Open (O_RDONLY) the sandbox's memory usage file and its memory.stat, for
 * the agent's /proc/meminfo (sysview.c). 0, or -errno with neither open. */
int cgroup_open_memory_files(const struct cgroup_ctx *cg, const char *id, int *usage_fd, int *stat_fd);
int cgroup_memory_usage(const struct cgroup_ctx *cg, const char *id, uint64_t *bytes);
/* Directory of the sandbox cgroup in hierarchy i (v1: 0 memory, 1 pids, 2 cpu, 3 freezer;
 * v2: only 0). Returns the number of hierarchies, or -errno. */
int cgroup_dir(const struct cgroup_ctx *cg, int i, const char *id, char *buf, size_t len);
int cgroup_count(enum cgroup_mode mode);
/* cgroup2's favordynmods (dynmods.c): 1 when it is on (set now if `set`),
 * 0 when off and not set, -errno when it could not be set (no cgroup2
 * mount, no privilege). msg says which, for the log. */
int cgroup_favordynmods(bool set, char *msg, size_t len);
/* The first cgroup2 mount in /proc/self/mountinfo: its mount point and its
 * superblock options ("rw,nsdelegate,..."). 0, or -ENOENT. */
int cgroup2_mount(char *mnt, size_t mlen, char *opts, size_t olen);

/* child.c: the daemon's handlers and blocked mask reset (between clone and exec). */
void child_reset_signals(void);

static inline void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

#endif
