/* cgroup_impl.h - what cgroup.c needs from each cgroup mode.
 *
 * cgroup_v1.c and cgroup_v2.c each fill one struct cgroup_impl; cgroup.c
 * picks one by mode in one place (impl_of) and does everything else the
 * same way for both. cgroupfs.c holds the file-level helpers the three
 * share. Internal to the cgroup files: the rest of the jail uses jail.h.
 */
#ifndef AIRLOCK_CGROUP_IMPL_H
#define AIRLOCK_CGROUP_IMPL_H

#include "jail.h"

/* How long destroy waits for a cgroup to empty after SIGKILL. Dying processes
 * with a lot of memory can take a while to release it. */
#define CGROUP_EMPTY_TIMEOUT_MS 10000
/* How long a pause waits for the kernel to freeze a sandbox's tasks. A task
 * in an uninterruptible sleep (D state: a slow disk, a fuse server) cannot
 * freeze until it wakes; past this the pause is refused and undone. */
#define CGROUP_FREEZE_TIMEOUT_MS 5000

struct cgroup_impl {
    int count; /* hierarchies: v1 one per controller (memory, pids, cpu), v2 one */
    /* Does the host have this mode's hierarchies with our controllers? */
    int (*available)(char *err, size_t errlen);
    /* The parent directory <root>/[controller/]<parent> of hierarchy i. */
    int (*parent_dir)(const struct cgroup_ctx *cg, int i, char *buf, size_t len);
    int (*init_parents)(const struct cgroup_ctx *cg, char *err, size_t errlen);
    /* Kill everything in one cgroup directory and wait until it is empty. */
    int (*kill_dir)(const char *dir);
    /* The limits hierarchy i is responsible for, written into its dir. */
    int (*apply_limits)(int i, const char *dir, const struct cgroup_limits *lim, char *err, size_t errlen);
    /* The hierarchy whose directory holds the freezer: v1's own freezer
     * hierarchy, v2's one. */
    int freezer;
    /* Freeze (or thaw) every process of the freezer directory dir and
     * wait until the kernel reports it done: 0, -ETIMEDOUT (a freeze is
     * then undone), -errno. */
    int (*set_frozen)(const char *dir, bool frozen, char *err, size_t errlen);
    /* If dir is frozen or freezing: SIGKILL everything in it, then thaw
     * it. A frozen v1 task does not act on SIGKILL until it thaws, so a
     * kill that waits for the cgroup to empty would wait forever; thawed
     * after the signal, each task dies on its way back to user space
     * without running user code again. 0 when it was not frozen. */
    int (*kill_frozen)(const char *dir);
    const char *oom_file;   /* in hierarchy 0: carries "oom_kill N" */
    const char *usage_file; /* in hierarchy 0: memory charged now, in bytes */
};

extern const struct cgroup_impl cgroup_v1_impl;
extern const struct cgroup_impl cgroup_v2_impl;

/* ---- cgroupfs.c ---- */
/* dir/file into buf; -ENAMETOOLONG rather than a truncated path. */
int cgroupfs_path_join(char *buf, size_t len, const char *dir, const char *file);
int cgroupfs_write(const char *dir, const char *file, const char *value, char *err, size_t errlen);
/* Is name a word of a cgroup.controllers / subtree_control list? */
bool cgroupfs_controllers_have(const char *list, const char *name);
int cgroupfs_mkdir_exist_ok(const char *path, char *err, size_t errlen);
/* v ("%llu"), or `unlimited` for 0. */
void cgroupfs_u64_or_max(char *buf, size_t len, uint64_t v, const char *unlimited);
int cgroupfs_set_pids_max(const char *dir, uint32_t n, char *err, size_t errlen);
void cgroupfs_sleep_ms(unsigned ms);
/* SIGKILL what dir/cgroup.procs lists once: how many, or -errno. */
int cgroupfs_kill_listed_once(const char *dir);
/* Poll dir/file until it holds want (a line, or a word of "key value"
 * lines as cgroup.events has) or CGROUP_FREEZE_TIMEOUT_MS passed. */
int cgroupfs_wait_for(const char *dir, const char *file, const char *want);
/* SIGKILL what dir/cgroup.procs lists until it stays empty (v1; v2 without
 * cgroup.kill). 0, -ETIMEDOUT, or -errno. */
int cgroupfs_kill_listed_until_empty(const char *dir);

#endif
