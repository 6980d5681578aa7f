/* plan.c - the plan: everything the child needs, built by the parent
 * before the clone (struct jail_plan), and its release afterwards.
 *
 * The child reads the plan and never writes it (CLONE_VM: it is the
 * daemon's memory, clone.c), so the parent frees it only once the child
 * has exec'd or is dead.
 */
#include "jail.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void plan_init(struct jail_plan *p, struct jail_parent_fds *pf)
{
    memset(p, 0, sizeof(*p));
    p->control_fd = p->release_fd = p->release_wr = p->error_fd = p->agent_fd = p->zygote_fd = -1;
    p->memcg_usage_fd = p->memcg_stat_fd = -1;
    p->usr.fd = p->dev.fd = p->runner.fd = -1;
    for (size_t i = 0; i < JAIL_MAX_ETC_BINDS; i++)
        p->etc_binds[i].fd = -1;
    pf->control = pf->release_wr = pf->error_rd = pf->zygote = -1;
}

static void plan_fds(struct jail_plan *p, int *fds[PLAN_NFDS])
{
    fds[0] = &p->control_fd;
    fds[1] = &p->release_fd;
    fds[2] = &p->error_fd;
    fds[3] = &p->usr.fd;
    fds[4] = &p->runner.fd;
    fds[5] = &p->zygote_fd;
    fds[6] = &p->dev.fd;
    fds[7] = &p->memcg_usage_fd;
    fds[8] = &p->memcg_stat_fd;
    for (size_t i = 0; i < JAIL_MAX_ETC_BINDS; i++)
        fds[9 + i] = &p->etc_binds[i].fd;
}

/* No child: close and free everything. */
void plan_release(struct jail_plan *p)
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        close_fd(fds[i]);
    p->agent_fd = -1;
    rootfs_release(p);
}

/* With a child running on the plan (CLONE_VM): the parent's copies of the
 * child's descriptors are closed by number, from a snapshot, because the
 * plan itself is the child's to read (closing through it would write -1
 * under the child's feet). The child has its own descriptor table (no
 * CLONE_FILES), so closing ours does not touch its. */
void plan_snapshot_fds(struct jail_plan *p, int out[PLAN_NFDS])
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        out[i] = *fds[i];
}

void close_snapshot_fds(int snap[PLAN_NFDS])
{
    for (size_t i = 0; i < PLAN_NFDS; i++)
        close_fd(&snap[i]);
}

/* Once the child exec'd or is dead: its plan's descriptors are closed
 * already (close_snapshot_fds); free the rest. */
void plan_release_after_child(struct jail_plan *p)
{
    int *fds[PLAN_NFDS];
    plan_fds(p, fds);
    for (size_t i = 0; i < PLAN_NFDS; i++)
        *fds[i] = -1;
    p->agent_fd = -1;
    rootfs_release(p);
}

void parent_fds_close(struct jail_parent_fds *pf)
{
    close_fd(&pf->control);
    close_fd(&pf->release_wr);
    close_fd(&pf->error_rd);
    close_fd(&pf->zygote);
}

static int plan_channels(struct jail_plan *p, struct jail_parent_fds *pf, char *err, size_t errlen)
{
    int sv[2], rel[2], er[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return jail_err(err, errlen, -errno, "socketpair");
    pf->control = sv[0];
    p->control_fd = sv[1];
    if (pipe2(rel, O_CLOEXEC) < 0)
        return jail_err(err, errlen, -errno, "pipe2 (release)");
    p->release_fd = rel[0];
    pf->release_wr = p->release_wr = rel[1];
    if (pipe2(er, O_CLOEXEC) < 0)
        return jail_err(err, errlen, -errno, "pipe2 (errors)");
    pf->error_rd = er[0];
    p->error_fd = er[1];
    return 0;
}

static void plan_mount_options(struct jail_plan *p, const struct sandbox_spec *spec)
{
    char size[40] = "";
    if (spec->tmpfs_bytes)
        snprintf(size, sizeof(size), ",size=%llu", (unsigned long long)spec->tmpfs_bytes);
    snprintf(p->root_opts, sizeof(p->root_opts), "mode=0755,size=1m");
    /* a cap, not an allocation: the copies of the host's /etc files */
    snprintf(p->etc_opts, sizeof(p->etc_opts), "mode=0755,size=8m");
    snprintf(p->devpts_opts, sizeof(p->devpts_opts), "newinstance,ptmxmode=0666,mode=620,max=%u", JAIL_PTY_MAX);
    snprintf(p->scratch_opts, sizeof(p->scratch_opts), "mode=0755%s", size);
}

/* The Python runner file, and the R and JavaScript runners from its
 * directory when they are there (a template without R still needs no
 * airlock_runner.R; the agent answers language="r" with a clear error). */
static int plan_runner_files(struct jail_plan *p, const char *py, char *err, size_t errlen)
{
    static const char *const names[] = {"airlock_runner.py", "airlock_runner.R", "airlock_runner.mjs"};
    _Static_assert(ARRAY_SIZE(names) <= ARRAY_SIZE(p->runner_files), "one slot per runner file");
    const char *slash = strrchr(py, '/');
    int dirlen = slash ? (int)(slash - py) : 1;
    const char *dir = slash ? py : ".";
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char path[PATH_MAX];
        if (i == 0)
            snprintf(path, sizeof(path), "%s", py);
        else if (snprintf(path, sizeof(path), "%.*s/%s", dirlen, dir, names[i]) >= (int)sizeof(path))
            return jail_err(err, errlen, -ENAMETOOLONG, "runner directory of %s", py);
        if (i > 0 && access(path, R_OK) < 0)
            continue; /* that language is then unavailable, not the sandbox */
        struct jail_runner_file *f = &p->runner_files[p->n_runner_files];
        int r = rootfs_copy_file(path, &f->data, &f->len, err, errlen);
        if (r < 0)
            return r;
        f->name = names[i];
        p->n_runner_files++;
    }
    return 0;
}

int plan_prepare(struct jail_state *st, const struct sandbox_spec *spec, struct jail_plan *p,
                 struct jail_parent_fds *pf, char *err, size_t errlen)
{
    int r = plan_channels(p, pf, err, errlen);
    if (r < 0)
        return r;
    p->agent_fd = st->agent_memfd;
    snprintf(p->hostname, sizeof(p->hostname), "%s", spec->hostname);
    snprintf(p->memory_arg, sizeof(p->memory_arg), "%llu", (unsigned long long)spec->memory_bytes);
    sysview_plan_cpus(p, spec->cpu_millis);
    plan_mount_options(p, spec);
    /* host template only: the zygote's imports come from the host's /usr.
     * No zygote (not ready, --no-zygote): the agent execs the runner. */
    if (st->zygote && (!spec->tmpl || !spec->tmpl->rootfs))
        (void)jail_zygote_channel(st->zygote, &pf->zygote, &p->zygote_fd);
    if ((r = rootfs_prepare(p, spec, &st->layers, err, errlen)) < 0)
        return r;
    if (spec->runner_path) {
        struct stat sb;
        if (stat(spec->runner_path, &sb) < 0)
            return jail_err(err, errlen, -errno, "stat %s", spec->runner_path);
        if (S_ISDIR(sb.st_mode))
            return layers_tree_ro(&st->layers, spec->runner_path, &p->runner, "opt/airlock", err, errlen);
        if ((r = plan_runner_files(p, spec->runner_path, err, errlen)) < 0)
            return r;
    }
    snprintf(p->warm_arg, sizeof(p->warm_arg), "%s", spec->warm_languages ? spec->warm_languages : "");
    return r;
}
