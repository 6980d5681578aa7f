/* cgroup.c - resource limits of a sandbox: memory (no swap), pids, cpu.
 *
 * Layout: <root>/<parent>/<sandbox id>, one directory per sandbox; the parent
 * is "airlock" unless the daemon gives another scope (see jail_init).
 *   v2: /sys/fs/cgroup/airlock/<id>           (memory, pids, cpu controllers)
 *   v1: /sys/fs/cgroup/{memory,pids,cpu}/airlock/<id>
 * What differs between the two is behind struct cgroup_impl (cgroup_v1.c,
 * cgroup_v2.c), chosen by mode in one place (impl_of); this file detects
 * the mode and does what is the same for both: one directory per
 * hierarchy, created, filled, emptied, removed.
 *
 * The agent is PID 1 of the sandbox with oom_score_adj -1000, so an OOM inside
 * the cgroup kills the offending user process, never the agent; that is also
 * why v2 memory.oom.group stays 0 (group kill would take the agent along).
 */
#include "cgroup_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "log.h"
#include "util.h"

/* The one place that looks at the mode. */
static const struct cgroup_impl *impl_of(enum cgroup_mode mode)
{
    return mode == CGROUP_V2 ? &cgroup_v2_impl : &cgroup_v1_impl;
}

int cgroup_count(enum cgroup_mode mode)
{
    return impl_of(mode)->count;
}

static int cgroup_parent_dir(const struct cgroup_ctx *cg, int i, char *buf, size_t len)
{
    return impl_of(cg->mode)->parent_dir(cg, i, buf, len);
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

/* v2 when /sys/fs/cgroup itself is cgroup2 with the three controllers we
 * need; v1 when each of them has its own hierarchy. */
int cgroup_detect(enum cgroup_mode *mode, char *err, size_t errlen)
{
    struct statfs sf;
    if (statfs(CGROUP_ROOT, &sf) < 0)
        return jail_err(err, errlen, -errno, "statfs %s", CGROUP_ROOT);
    enum cgroup_mode m = sf.f_type == CGROUP2_SUPER_MAGIC ? CGROUP_V2 : CGROUP_V1;
    int r = impl_of(m)->available(err, errlen);
    if (r < 0)
        return r;
    *mode = m;
    return 0;
}

int cgroup_init_parents(const struct cgroup_ctx *cg, char *err, size_t errlen)
{
    return impl_of(cg->mode)->init_parents(cg, err, errlen);
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
        cgroupfs_sleep_ms(1);
    }
}

/* Depth-first: kill, wait empty, remove. Sandboxes cannot create nested
 * cgroups (the cgroupfs belongs to host root and is not mounted inside), but
 * recovery should not fail if someone did. */
static int cgroup_remove_tree(const struct cgroup_impl *impl, const char *dir)
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
        int q = cgroup_remove_tree(impl, sub);
        if (q < 0 && r == 0)
            r = q;
    }
    closedir(d);
    int q = impl->kill_dir(dir);
    if (q < 0 && r == 0)
        r = q;
    q = rmdir_cgroup(dir);
    return r < 0 ? r : q;
}

/* A dead daemon may have left a sandbox paused: kill and thaw every frozen
 * sandbox cgroup first, or the removal below would wait for frozen tasks
 * that cannot die (v1). */
static void recover_frozen(const struct cgroup_ctx *cg)
{
    const struct cgroup_impl *impl = impl_of(cg->mode);
    char parent[PATH_MAX];
    if (cgroup_parent_dir(cg, impl->freezer, parent, sizeof(parent)) < 0)
        return;
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char dir[PATH_MAX];
        if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
            snprintf(dir, sizeof(dir), "%s/%s", parent, de->d_name) >= (int)sizeof(dir))
            continue;
        int q = impl->kill_frozen(dir);
        if (q < 0)
            log_warn("jail: thaw leftover cgroup %s: %s", dir, strerror(-q));
    }
    closedir(d);
}

int cgroup_recover(const struct cgroup_ctx *cg)
{
    int removed = 0, r = 0;
    recover_frozen(cg);
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
            int q = cgroup_remove_tree(impl_of(cg->mode), dir);
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
            r = impl_of(cg->mode)->apply_limits(i, dir, lim, err, errlen);
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
        if ((r = cgroupfs_write(dir, "cgroup.procs", v, err, errlen)) < 0)
            return r;
    }
    return 0;
}

static int freezer_dir(const struct cgroup_ctx *cg, const char *id, char *dir, size_t len)
{
    int r = cgroup_dir(cg, impl_of(cg->mode)->freezer, id, dir, len);
    return r < 0 ? r : 0;
}

int cgroup_set_frozen(const struct cgroup_ctx *cg, const char *id, bool frozen, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int r = freezer_dir(cg, id, dir, sizeof(dir));
    if (r < 0)
        return jail_err(err, errlen, r, "freezer cgroup path for %s", id);
    return impl_of(cg->mode)->set_frozen(dir, frozen, err, errlen);
}

int cgroup_kill_frozen(const struct cgroup_ctx *cg, const char *id)
{
    char dir[PATH_MAX];
    int r = freezer_dir(cg, id, dir, sizeof(dir));
    return r < 0 ? r : impl_of(cg->mode)->kill_frozen(dir);
}

int cgroup_destroy(const struct cgroup_ctx *cg, const char *id)
{
    int r = cgroup_kill_frozen(cg, id);
    if (r < 0)
        log_warn("jail: kill frozen cgroup %s: %s", id, strerror(-r));
    r = 0;
    for (int i = 0; i < cgroup_count(cg->mode); i++) {
        char dir[PATH_MAX];
        int q = cgroup_dir(cg, i, id, dir, sizeof(dir));
        if (q >= 0)
            q = cgroup_remove_tree(impl_of(cg->mode), dir);
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
    if ((r = cgroupfs_path_join(path, sizeof(path), dir, impl_of(cg->mode)->oom_file)) < 0)
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

int cgroup_open_memory_files(const struct cgroup_ctx *cg, const char *id, int *usage_fd, int *stat_fd)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int r = cgroup_dir(cg, 0, id, dir, sizeof(dir));
    if (r < 0)
        return r;
    if ((r = cgroupfs_path_join(path, sizeof(path), dir, impl_of(cg->mode)->usage_file)) < 0)
        return r;
    int u = open(path, O_RDONLY | O_CLOEXEC);
    if (u < 0)
        return -errno;
    if ((r = cgroupfs_path_join(path, sizeof(path), dir, "memory.stat")) < 0) {
        close(u);
        return r;
    }
    int st = open(path, O_RDONLY | O_CLOEXEC);
    if (st < 0) {
        r = -errno;
        close(u);
        return r;
    }
    *usage_fd = u;
    *stat_fd = st;
    return 0;
}

int cgroup_memory_usage(const struct cgroup_ctx *cg, const char *id, uint64_t *bytes)
{
    char dir[PATH_MAX], path[PATH_MAX], buf[64];
    int r = cgroup_dir(cg, 0, id, dir, sizeof(dir));
    if (r < 0)
        return r;
    if ((r = cgroupfs_path_join(path, sizeof(path), dir, impl_of(cg->mode)->usage_file)) < 0)
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
