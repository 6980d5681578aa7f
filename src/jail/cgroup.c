/* cgroup.c - resource limits of a sandbox: memory (no swap), pids, cpu.
 *
 * Layout: <root>/<parent>/<sandbox id>, one directory per sandbox; the parent
 * is "airlock" unless the daemon gives another scope (see jail_init).
 *   v2: /sys/fs/cgroup/airlock/<id>           (memory, pids, cpu controllers)
 *   v1: /sys/fs/cgroup/{memory,pids,cpu}/airlock/<id>
 * Real hosts run v2 (systemd); older hosts and some VMs (including the one
 * this was written on) run v1 with an empty v2 mount at /sys/fs/cgroup/unified,
 * which we ignore: it has no controllers.
 *
 * The agent is PID 1 of the sandbox with oom_score_adj -1000, so an OOM inside
 * the cgroup kills the offending user process, never the agent; that is also
 * why v2 memory.oom.group stays 0 (group kill would take the agent along).
 */
#include "jail.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "log.h"
#include "util.h"

static const char *const v1_controllers[] = {"memory", "pids", "cpu"};

/* How long destroy waits for a cgroup to empty after SIGKILL. Dying processes
 * with a lot of memory can take a while to release it. */
#define CGROUP_EMPTY_TIMEOUT_MS 10000

int cgroup_count(enum cgroup_mode mode)
{
    return mode == CGROUP_V2 ? 1 : (int)ARRAY_SIZE(v1_controllers);
}

static int cgroup_parent_dir(const struct cgroup_ctx *cg, int i, char *buf, size_t len)
{
    int n = cg->mode == CGROUP_V2 ? snprintf(buf, len, CGROUP_ROOT "/%s", cg->parent)
                                  : snprintf(buf, len, CGROUP_ROOT "/%s/%s", v1_controllers[i], cg->parent);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void cgroup_remove_parents(const struct cgroup_ctx *cg)
{
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        char parent[PATH_MAX];
        if (cgroup_parent_dir(cg, i, parent, sizeof(parent)) < 0)
            continue;
        /* EBUSY while a sandbox cgroup remains: then it stays for the next start */
        if (rmdir(parent) < 0 && errno != ENOENT && errno != EBUSY)
            log_warn("rmdir %s: %s", parent, strerror(errno));
    }
}

int cgroup_dir(const struct cgroup_ctx *cg, int i, const char *id, char *buf, size_t len)
{
    char parent[PATH_MAX];
    int r = cgroup_parent_dir(cg, i, parent, sizeof(parent));
    if (r < 0)
        return r;
    int n = snprintf(buf, len, "%s/%s", parent, id);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : cgroup_count(cg->mode);
}

/* dir/file into buf; -ENAMETOOLONG rather than a truncated path. */
static int path_join(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int cgroup_write(const char *dir, const char *file, const char *value, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int r = path_join(path, sizeof(path), dir, file);
    if (r < 0)
        return jail_err(err, errlen, r, "cgroup file %s in %s", file, dir);
    r = write_file(path, value);
    if (r < 0)
        return jail_err(err, errlen, r, "write %s to %s", value, path);
    return 0;
}

static bool controllers_have(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static bool is_cgroup_v1_hierarchy(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == CGROUP_SUPER_MAGIC;
}

/* v2 when /sys/fs/cgroup itself is cgroup2 with the three controllers we
 * need; v1 when each of them has its own hierarchy. */
int cgroup_detect(enum cgroup_mode *mode, char *err, size_t errlen)
{
    struct statfs sf;
    if (statfs(CGROUP_ROOT, &sf) < 0)
        return jail_err(err, errlen, -errno, "statfs %s", CGROUP_ROOT);
    if (sf.f_type == CGROUP2_SUPER_MAGIC) {
        char ctl[512];
        int r = read_file_small(CGROUP_ROOT "/cgroup.controllers", ctl, sizeof(ctl));
        if (r < 0)
            return jail_err(err, errlen, r, "read %s", CGROUP_ROOT "/cgroup.controllers");
        const char *need[] = {"memory", "pids", "cpu"};
        for (size_t i = 0; i < ARRAY_SIZE(need); i++)
            if (!controllers_have(ctl, need[i]))
                return jail_err(err, errlen, -ENOTSUP, "cgroup v2 controller %s missing from %s", need[i],
                                CGROUP_ROOT "/cgroup.controllers");
        *mode = CGROUP_V2;
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(v1_controllers); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), CGROUP_ROOT "/%s", v1_controllers[i]);
        if (!is_cgroup_v1_hierarchy(path))
            return jail_err(err, errlen, -ENOTSUP, "no cgroup v2 at %s and no cgroup v1 hierarchy at %s",
                            CGROUP_ROOT, path);
    }
    *mode = CGROUP_V1;
    return 0;
}

static int mkdir_exist_ok(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return jail_err(err, errlen, -errno, "mkdir %s", path);
    return 0;
}

/* Write subtree_control only when something is missing: on a systemd host
 * the root already delegates them, and in a cgroup namespace whose root holds
 * processes the write would fail (EBUSY) although nothing needs changing. */
static int cgroup_enable_controllers(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX], cur[512];
    int r = path_join(path, sizeof(path), dir, "cgroup.subtree_control");
    if (r < 0)
        return jail_err(err, errlen, r, "cgroup.subtree_control in %s", dir);
    if (read_file_small(path, cur, sizeof(cur)) >= 0 && controllers_have(cur, "memory") &&
        controllers_have(cur, "pids") && controllers_have(cur, "cpu"))
        return 0;
    return cgroup_write(dir, "cgroup.subtree_control", "+memory +pids +cpu", err, errlen);
}

int cgroup_init_parents(const struct cgroup_ctx *cg, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int r;
    if (cg->mode == CGROUP_V2) {
        /* Controllers must be enabled in each ancestor's subtree_control
         * before a child cgroup gets their files. */
        if ((r = cgroup_enable_controllers(CGROUP_ROOT, err, errlen)) < 0)
            return r;
        if ((r = cgroup_parent_dir(cg, 0, dir, sizeof(dir))) < 0 || (r = mkdir_exist_ok(dir, err, errlen)) < 0)
            return r;
        return cgroup_enable_controllers(dir, err, errlen);
    }
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        if ((r = cgroup_parent_dir(cg, i, dir, sizeof(dir))) < 0 || (r = mkdir_exist_ok(dir, err, errlen)) < 0)
            return r;
    }
    return 0;
}

/* Fill buf with the content of dir/cgroup.procs; returns bytes or -errno. */
static int read_procs(const char *dir, char *buf, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    return read_file_small(path, buf, cap);
}

/* SIGKILL every process listed in dir/cgroup.procs. Returns how many were
 * listed (0 = empty) or -errno. */
static int kill_listed_procs(const char *dir, char *buf, size_t cap)
{
    int r = read_procs(dir, buf, cap);
    if (r < 0)
        return r;
    /* a full buffer may end in a cut pid ("12" of "12345"): only whole lines */
    char *last_nl = strrchr(buf, '\n');
    if (!last_nl)
        return r > 0 ? -EIO : 0;
    last_nl[1] = '\0';
    int n = 0;
    for (char *p = buf, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p || *end != '\n')
            break;
        end++;
        if (pid > 1) {
            (void)kill((pid_t)pid, SIGKILL);
            n++;
        }
    }
    return n;
}

static bool v2_populated(const char *dir)
{
    char path[PATH_MAX], buf[256];
    snprintf(path, sizeof(path), "%s/cgroup.events", dir);
    if (read_file_small(path, buf, sizeof(buf)) < 0)
        return false;
    return strstr(buf, "populated 1") != NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Kill everything in one cgroup directory and wait until it is empty.
 * v2 has cgroup.kill (atomic against forks). v1 has nothing like it, so we
 * SIGKILL what cgroup.procs lists, again and again until it stays empty; a
 * fork racing with us is caught by the next round. */
static int cgroup_kill_dir(enum cgroup_mode mode, const char *dir)
{
    char path[PATH_MAX];
    uint64_t deadline = now_mono_ms() + CGROUP_EMPTY_TIMEOUT_MS;
    if (mode == CGROUP_V2) {
        int r = path_join(path, sizeof(path), dir, "cgroup.kill");
        if (r >= 0)
            r = write_file(path, "1");
        if (r == -ENOENT && access(dir, F_OK) < 0)
            return 0; /* no such cgroup */
        /* without cgroup.kill (kernels before 5.14) use the v1 loop below */
        while (r >= 0 && v2_populated(dir)) {
            if (now_mono_ms() > deadline)
                return -ETIMEDOUT;
            sleep_ms(1);
        }
        if (r >= 0)
            return 0;
    }
    cleanup_free char *buf = malloc(65536);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        int n = kill_listed_procs(dir, buf, 65536);
        if (n == -ENOENT || n == 0)
            return 0;
        if (n < 0)
            return n;
        if (now_mono_ms() > deadline)
            return -ETIMEDOUT;
        sleep_ms(1);
    }
}

/* rmdir, retrying briefly: a cgroup can stay busy for a moment after its
 * last process is gone. */
static int rmdir_cgroup(const char *dir)
{
    for (int tries = 0;; tries++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY || tries >= 1000)
            return -errno;
        sleep_ms(1);
    }
}

/* Depth-first: kill, wait empty, remove. Sandboxes cannot create nested
 * cgroups (the cgroupfs belongs to host root and is not mounted inside), but
 * recovery should not fail if someone did. */
static int cgroup_remove_tree(enum cgroup_mode mode, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub))
            continue;
        int q = cgroup_remove_tree(mode, sub);
        if (q < 0 && r == 0)
            r = q;
    }
    closedir(d);
    int q = cgroup_kill_dir(mode, dir);
    if (q < 0 && r == 0)
        r = q;
    q = rmdir_cgroup(dir);
    return r < 0 ? r : q;
}

int cgroup_recover(const struct cgroup_ctx *cg)
{
    int removed = 0, r = 0;
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        char parent[PATH_MAX];
        cgroup_parent_dir(cg, i, parent, sizeof(parent));
        DIR *d = opendir(parent);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            char dir[PATH_MAX];
            if (snprintf(dir, sizeof(dir), "%s/%s", parent, de->d_name) >= (int)sizeof(dir))
                continue;
            int q = cgroup_remove_tree(cg->mode, dir);
            if (q < 0) {
                log_warn("jail: cannot remove leftover cgroup %s: %s", dir, strerror(-q));
                if (r == 0)
                    r = q;
            } else {
                log_info("jail: removed leftover cgroup %s", dir);
                removed++;
            }
        }
        closedir(d);
    }
    return r < 0 ? r : removed;
}

static void u64_or_max(char *buf, size_t len, uint64_t v, const char *unlimited)
{
    if (v == 0)
        snprintf(buf, len, "%s", unlimited);
    else
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int cgroup_set_memory_max(enum cgroup_mode mode, const char *dir, uint64_t bytes, char *err,
                                 size_t errlen)
{
    char v[32];
    int r;
    if (mode == CGROUP_V2) {
        u64_or_max(v, sizeof(v), bytes, "max");
        if ((r = cgroup_write(dir, "memory.max", v, err, errlen)) < 0)
            return r;
        /* a host without swap has no memory.swap.max: nothing to disable */
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/memory.swap.max", dir);
        if (access(path, F_OK) == 0 && (r = cgroup_write(dir, "memory.swap.max", "0", err, errlen)) < 0)
            return r;
        return cgroup_write(dir, "memory.oom.group", "0", err, errlen);
    }
    u64_or_max(v, sizeof(v), bytes, "-1");
    /* memory first: memsw must never be below it */
    if ((r = cgroup_write(dir, "memory.limit_in_bytes", v, err, errlen)) < 0)
        return r;
    char path[PATH_MAX];
    /* v1 charges socket buffers to no one unless this is set (v2 charges
     * them to memory.max): a 128 MiB sandbox pinned 2.2 GiB of TCP and as
     * much UDP buffer memory over loopback, and a few such reach tcp_mem's
     * hard limit, which stalls every TCP socket on the host (the daemon's
     * API included). Despite its name the counter is the cgroup's socket
     * memory: once it is set, mem_cgroup_sk_alloc gives every new socket of
     * the cgroup its memcg, and UDP's buffers are charged to it as TCP's are
     * (measured: 32 MiB of UDP, then drops). It must be set before the
     * cgroup has sockets. */
    snprintf(path, sizeof(path), "%s/memory.kmem.tcp.limit_in_bytes", dir);
    if (bytes && access(path, F_OK) == 0) {
        uint64_t tcp = bytes / 4 > CGROUP_TCP_MIN ? bytes / 4 : CGROUP_TCP_MIN;
        u64_or_max(v, sizeof(v), tcp, "-1");
        if ((r = cgroup_write(dir, "memory.kmem.tcp.limit_in_bytes", v, err, errlen)) < 0)
            return r;
        u64_or_max(v, sizeof(v), bytes, "-1");
    }
    snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", dir);
    if (access(path, F_OK) == 0)
        return cgroup_write(dir, "memory.memsw.limit_in_bytes", v, err, errlen);
    /* kernel without swap accounting: at least do not prefer swapping */
    return cgroup_write(dir, "memory.swappiness", "0", err, errlen);
}

static int cgroup_set_pids_max(const char *dir, uint32_t n, char *err, size_t errlen)
{
    char v[32];
    u64_or_max(v, sizeof(v), n, "max");
    return cgroup_write(dir, "pids.max", v, err, errlen);
}

/* cpu_millis 1000 = one full CPU = a quota of 100 ms per 100 ms period. */
static int cgroup_set_cpu_max(enum cgroup_mode mode, const char *dir, uint32_t millis, char *err, size_t errlen)
{
    char v[64];
    uint64_t quota = (uint64_t)millis * 100;
    if (mode == CGROUP_V2) {
        if (millis == 0)
            snprintf(v, sizeof(v), "max 100000");
        else
            snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)quota);
        return cgroup_write(dir, "cpu.max", v, err, errlen);
    }
    int r = cgroup_write(dir, "cpu.cfs_period_us", "100000", err, errlen);
    if (r < 0)
        return r;
    u64_or_max(v, sizeof(v), quota, "-1");
    return cgroup_write(dir, "cpu.cfs_quota_us", v, err, errlen);
}

/* The limits a hierarchy is responsible for: v2 has one directory for all
 * controllers, v1 one directory per controller. */
static int cgroup_apply_limits(enum cgroup_mode mode, int i, const char *dir, const struct cgroup_limits *lim,
                               char *err, size_t errlen)
{
    int r;
    if (mode == CGROUP_V2) {
        if ((r = cgroup_set_memory_max(mode, dir, lim->memory_bytes, err, errlen)) < 0 ||
            (r = cgroup_set_pids_max(dir, lim->pids_max, err, errlen)) < 0)
            return r;
        return cgroup_set_cpu_max(mode, dir, lim->cpu_millis, err, errlen);
    }
    switch (i) {
    case 0: return cgroup_set_memory_max(mode, dir, lim->memory_bytes, err, errlen);
    case 1: return cgroup_set_pids_max(dir, lim->pids_max, err, errlen);
    default: return cgroup_set_cpu_max(mode, dir, lim->cpu_millis, err, errlen);
    }
}

int cgroup_create(const struct cgroup_ctx *cg, const char *id, const struct cgroup_limits *lim, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        int r = cgroup_dir(cg, i, id, dir, sizeof(dir));
        if (r < 0)
            return jail_err(err, errlen, r, "cgroup path for %s", id);
        if (mkdir(dir, 0755) < 0) {
            /* EEXIST: the id is taken; never touch a cgroup we did not make */
            r = jail_err(err, errlen, -errno, "mkdir %s", dir);
            i--;
        } else {
            r = cgroup_apply_limits(cg->mode, i, dir, lim, err, errlen);
        }
        if (r < 0) {
            for (; i >= 0; i--)
                if (cgroup_dir(cg, i, id, dir, sizeof(dir)) >= 0)
                    (void)rmdir(dir);
            return r;
        }
    }
    return 0;
}

int cgroup_add_pid(const struct cgroup_ctx *cg, const char *id, pid_t pid, char *err, size_t errlen)
{
    char dir[PATH_MAX], v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        int r = cgroup_dir(cg, i, id, dir, sizeof(dir));
        if (r < 0)
            return jail_err(err, errlen, r, "cgroup path for %s", id);
        if ((r = cgroup_write(dir, "cgroup.procs", v, err, errlen)) < 0)
            return r;
    }
    return 0;
}

int cgroup_destroy(const struct cgroup_ctx *cg, const char *id)
{
    int r = 0;
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        char dir[PATH_MAX];
        int q = cgroup_dir(cg, i, id, dir, sizeof(dir));
        if (q >= 0)
            q = cgroup_remove_tree(cg->mode, dir);
        if (q < 0 && r == 0)
            r = q;
    }
    return r;
}

/* Both v2 memory.events and v1 memory.oom_control carry "oom_kill N". */
int cgroup_oom_kills(const struct cgroup_ctx *cg, const char *id, uint64_t *count)
{
    char dir[PATH_MAX], path[PATH_MAX], buf[512];
    int r = cgroup_dir(cg, 0, id, dir, sizeof(dir));
    if (r < 0)
        return r;
    if ((r = path_join(path, sizeof(path), dir, cg->mode == CGROUP_V2 ? "memory.events" : "memory.oom_control")) < 0)
        return r;
    if ((r = read_file_small(path, buf, sizeof(buf))) < 0)
        return r;
    for (char *p = buf; (p = strstr(p, "oom_kill ")) != NULL; p++) {
        if (p == buf || p[-1] == '\n') {
            *count = strtoull(p + strlen("oom_kill "), NULL, 10);
            return 0;
        }
    }
    return -ENODATA;
}

int cgroup_memory_usage(const struct cgroup_ctx *cg, const char *id, uint64_t *bytes)
{
    char dir[PATH_MAX], path[PATH_MAX], buf[64];
    int r = cgroup_dir(cg, 0, id, dir, sizeof(dir));
    if (r < 0)
        return r;
    if ((r = path_join(path, sizeof(path), dir,
                       cg->mode == CGROUP_V2 ? "memory.current" : "memory.usage_in_bytes")) < 0)
        return r;
    if ((r = read_file_small(path, buf, sizeof(buf))) < 0)
        return r;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return -EBADMSG;
    *bytes = v;
    return 0;
}
