/* fork.c - full-state fork of a running VM: n children whose memory,
 * processes, REPL and files are the parent's at one instant.
 *
 * Where the parent's RAM is: a restored VM maps its snapshot's sealed memfd
 * private (snapshot.c), so its guest RAM is the snapshot's pages plus its
 * own anonymous copies of every page it wrote, inside its VMM. There is no
 * file to hand a child, and mapping the parent's RAM into children is wrong
 * in any case: a MAP_PRIVATE page a child has not yet written shows what the
 * underlying file holds *now*, so a parent writing to a shared file later
 * would change what its children read. The children need a frozen copy.
 *
 * So a fork makes one, in memory, and never on disk:
 *
 *   1. F, a new memfd of the guest's RAM size, allocated by the daemon (as a
 *      snapshot's is: every page exists, so a child's read fault never
 *      allocates into it, charged to that child).
 *   2. A loader VMM: F mapped *shared*, -incoming defer and -S, so its
 *      guest never runs (VM_RAM_LOAD).
 *   3. The parent is migrated live, RAM included, over a socketpair
 *      straight into the loader, which writes every page into F. The parent
 *      runs while its pages stream; QEMU pauses it for the last dirty pages
 *      and the device state only (the fork's pause), then `cont`: it runs
 *      on in its own memory, which F does not alias.
 *   4. The loader (stopped, F now the parent's RAM) saves its device state
 *      with x-ignore-shared into a second memfd D (~60 KB), and is killed.
 *      F and D are sealed: the pair is a snapshot of the parent, exactly
 *      the shape of a warm snapshot.
 *   5. Each child is a restore of (F, D) (vm_restore_image): F mapped
 *      private, so unchanged pages are shared between the children, each
 *      write is that child's own copy; reseeded (entropy, clock, Python's
 *      generators) so no two members share randomness.
 *
 * Isolation afterwards: the parent writes its own pages (F is a copy);
 * F is sealed (nobody can write it, a child's writes are private copies);
 * a child's pages die with its VMM. The daemon closes F and D when the
 * children are up: the children's mappings hold F, so its memory is freed by
 * the kernel with the family's last child, and nothing of it reaches disk
 * (memfd, the VMM cgroups have no swap).
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#define FORK_QMP_MS 5000
#define FORK_MAX 32
/* No rate limit on a migration into a memfd across a socketpair: QEMU's
 * default (128 MiB/s) would pause the parent for seconds. */
#define FORK_BANDWIDTH (64ull << 30)
/* How long the parent runs while its RAM streams before it is stopped for
 * the rest (migrate_parent). */
#define FORK_LIVE_MS 3000
/* The pause QEMU aims for at the end of the live copy. */
#define FORK_DOWNTIME_MS 20

struct restore_job {
    struct vm_state *st;
    const struct sandbox_spec *spec;
    bool kvm;
    int ram_fd, state_fd;
    struct backend_instance *in;
    int afd;
    int r;
    char err[512];
};

/* One child. A restore whose VMM died or whose guest did not answer is
 * tried once more from the same image (seen once here, under a load
 * average of 20, as a VMM gone during the reseed): an image that cannot be
 * restored fails twice and fails the fork. */
static void *restore_main(void *arg)
{
    struct restore_job *j = arg;
    for (int attempt = 0; attempt < 2; attempt++) {
        j->r = vm_restore_image(j->st, j->spec, j->kvm, j->ram_fd, j->state_fd, &j->in, &j->afd, j->err,
                                sizeof(j->err));
        if (j->r == 0 || (j->r != -EPIPE && j->r != -ETIMEDOUT && j->r != -ECONNRESET))
            break;
        log_warn("vm %s: fork child restore failed (%s); trying once more", j->spec->id, j->err);
    }
    return NULL;
}

static int set_bandwidth(int qmp, char *err, size_t errlen)
{
    json_t *a = json_pack("{s:I,s:I}", "max-bandwidth", (json_int_t)FORK_BANDWIDTH, "downtime-limit",
                          (json_int_t)FORK_DOWNTIME_MS);
    int r = a ? qmp_command(qmp, "migrate-set-parameters", a, FORK_QMP_MS, NULL, err, errlen) : -ENOMEM;
    json_decref(a);
    return r;
}

static int qmp_uri(int qmp, const char *cmd, const char *uri, char *err, size_t errlen)
{
    json_t *a = json_pack("{s:s}", "uri", uri);
    int r = a ? qmp_command(qmp, cmd, a, FORK_QMP_MS, NULL, err, errlen) : -ENOMEM;
    json_decref(a);
    return r;
}

/* The parent's outgoing migration to its end. A guest that dirties memory
 * faster than it streams would never converge: past FORK_LIVE_MS it is
 * stopped, and the rest goes while it waits. *downtime: QEMU's measure of
 * the pause (ms). */
static int migrate_parent(int qmp, json_int_t *downtime, char *err, size_t errlen)
{
    uint64_t start = now_mono_ms(), deadline = start + 60000;
    bool stopped = false;
    for (;;) {
        json_t *ret = NULL;
        int r = qmp_command(qmp, "query-migrate", NULL, FORK_QMP_MS, &ret, err, errlen);
        if (r < 0)
            return r;
        const char *status = json_string_value(json_object_get(ret, "status"));
        bool done = status && strcmp(status, "completed") == 0;
        bool failed = status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0);
        if (done)
            *downtime = json_integer_value(json_object_get(ret, "downtime"));
        if (failed) {
            const char *desc = json_string_value(json_object_get(ret, "error-desc"));
            r = jail_err(err, errlen, -EIO, "fork: migration %s%s%s", status, desc ? ": " : "", desc ? desc : "");
        }
        json_decref(ret);
        if (done || failed)
            return r;
        uint64_t now = now_mono_ms();
        if (now > deadline)
            return jail_err(err, errlen, -ETIMEDOUT, "fork: the parent's state did not move in 60 s");
        if (!stopped && now - start > FORK_LIVE_MS) {
            if ((r = qmp_command(qmp, "stop", NULL, FORK_QMP_MS, NULL, err, errlen)) < 0)
                return r;
            stopped = true;
            log_info("fork: the parent kept dirtying memory for %d ms; stopped it to finish", FORK_LIVE_MS);
        }
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

struct alloc_job {
    int fd;
    off_t bytes;
    int r;
};

static void *alloc_main(void *arg)
{
    struct alloc_job *j = arg;
    j->r = fallocate(j->fd, 0, 0, j->bytes) < 0 ? -errno : 0;
    return NULL;
}

/* Steps 1-4: the parent's state at one instant as (F, D), both sealed. */
static int freeze_parent(struct vm_state *st, struct backend_instance *parent, const struct sandbox_spec *spec,
                         bool kvm, int *ram_out, int *state_out, char *err, size_t errlen)
{
    uint64_t t0 = now_mono_us();
    cleanup_fd int ram = memfd_create("airlock-vm-fork-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    cleanup_fd int state = memfd_create("airlock-vm-fork-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int sp[2] = {-1, -1};
    struct backend_instance *loader = NULL;
    int lafd = -1, r = 0;
    if (ram < 0 || state < 0)
        return jail_err(err, errlen, -errno, "memfd_create");
    if (ftruncate(ram, (off_t)spec->memory_bytes) < 0 || fchmod(ram, 0666) < 0)
        return jail_err(err, errlen, -errno, "size the fork's RAM (%llu MiB)",
                        (unsigned long long)(spec->memory_bytes >> 20));
    /* the allocation (zeroing the guest's RAM size) runs while the loader
     * VMM starts: the loader maps F but writes nothing before the migration,
     * which starts after both */
    struct alloc_job aj = {.fd = ram, .bytes = (off_t)spec->memory_bytes, .r = -EIO};
    pthread_t at;
    bool threaded = pthread_create(&at, NULL, alloc_main, &aj) == 0;
    if (!threaded)
        alloc_main(&aj);
    /* the loader gets a cgroup and uid of its own, named after the first
     * child (unique) with another prefix */
    struct sandbox_spec lspec = *spec;
    memcpy(lspec.id, "fk_", 3);
    r = vm_start(st, &lspec, kvm, VM_RAM_LOAD, ram, &loader, &lafd, err, errlen);
    if (threaded)
        pthread_join(at, NULL);
    uint64_t t_alloc = now_mono_us();
    if (r < 0)
        return r;
    if (aj.r < 0) {
        r = jail_err(err, errlen, aj.r, "allocate the fork's RAM (%llu MiB)",
                     (unsigned long long)(spec->memory_bytes >> 20));
        goto out;
    }
    int lq = vm_instance_qmp(loader), pq = vm_instance_qmp(parent);
    uint64_t t_loader = t_alloc, t_stop = 0, t_cont = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        r = jail_err(err, errlen, -errno, "socketpair");
        goto out;
    }
    /* RAM travels in the stream: x-ignore-shared off at both ends (the
     * capability changes the stream's format, so both must agree) */
    if ((r = vm_ignore_shared(lq, false, err, errlen)) < 0 ||
        (r = qmp_send_fd(lq, "fork", sp[1], FORK_QMP_MS, err, errlen)) < 0 ||
        (r = qmp_uri(lq, "migrate-incoming", "fd:fork", err, errlen)) < 0)
        goto out;
    if ((r = vm_ignore_shared(pq, false, err, errlen)) < 0 || (r = set_bandwidth(pq, err, errlen)) < 0 ||
        (r = qmp_send_fd(pq, "fork", sp[0], FORK_QMP_MS, err, errlen)) < 0)
        goto out;
    close_fd(&sp[0]);
    close_fd(&sp[1]);
    /* Live: the parent runs while its RAM streams; QEMU stops it for the
     * last dirty pages and the device state (the pause it reports as
     * "downtime"), then we let it run again. */
    /* a parent someone paused (QMP stop) stays paused: only a running one
     * is let run again afterwards */
    json_t *status = NULL;
    if ((r = qmp_command(pq, "query-status", NULL, FORK_QMP_MS, &status, err, errlen)) < 0)
        goto out;
    bool was_running = json_is_true(json_object_get(status, "running"));
    json_decref(status);
    t_stop = now_mono_us();
    json_int_t downtime = -1;
    if ((r = qmp_uri(pq, "migrate", "fd:fork", err, errlen)) == 0)
        r = migrate_parent(pq, &downtime, err, errlen);
    char cerr[256];
    int rc = was_running ? qmp_command(pq, "cont", NULL, FORK_QMP_MS, NULL, cerr, sizeof(cerr)) : 0;
    t_cont = now_mono_us();
    if (rc < 0) {
        /* a parent that cannot run again is lost: say so, the daemon's
         * agent reader sees it stop answering */
        log_error("vm %s: fork: the parent did not resume: %s", vm_instance_id(parent), cerr);
        if (r == 0)
            r = jail_err(err, errlen, rc, "fork: resume the parent: %s", cerr);
    }
    if (r < 0)
        goto out;
    if ((r = vm_wait_migration(lq, "fork: load the parent's RAM", err, errlen)) < 0)
        goto out;
    uint64_t t_loaded = now_mono_us();
    /* the loader is paused (-S): its device state against F, then gone */
    if ((r = vm_ignore_shared(lq, true, err, errlen)) < 0 ||
        (r = qmp_send_fd(lq, "forkstate", state, FORK_QMP_MS, err, errlen)) < 0 ||
        (r = qmp_uri(lq, "migrate", "fd:forkstate", err, errlen)) < 0 ||
        (r = vm_wait_migration(lq, "fork: save the device state", err, errlen)) < 0)
        goto out;
    close_fd(&lafd);
    vm_instance_free(st, loader); /* killed and reaped: no writable mapping of F is left */
    loader = NULL;
    if ((r = vm_memfd_seal(ram, 0666)) < 0 || (r = vm_memfd_seal(state, 0444)) < 0) {
        jail_err(err, errlen, r, "seal the fork's image");
        goto out;
    }
    log_info("vm %s: fork image in %.1f ms (allocate || loader %.1f, migrate %.1f with the parent paused %lld, "
             "load %.1f, state %.1f)",
             vm_instance_id(parent), (now_mono_us() - t0) / 1000.0, (t_loader - t0) / 1000.0,
             (t_cont - t_stop) / 1000.0, (long long)downtime,
             (t_loaded - t_cont) / 1000.0, (now_mono_us() - t_loaded) / 1000.0);
    *ram_out = steal_fd(&ram);
    *state_out = steal_fd(&state);
out:
    close_fd(&sp[0]);
    close_fd(&sp[1]);
    if (lafd >= 0)
        close(lafd);
    if (loader)
        vm_instance_free(st, loader);
    return r;
}

int vm_fork(void *state, struct backend_instance *parent, const struct sandbox_spec *child_specs, unsigned n,
            struct backend_instance **children, int *agent_fds, char *err, size_t errlen)
{
    struct vm_state *st = state;
    if (n == 0 || n > FORK_MAX)
        return jail_err(err, errlen, -EINVAL, "fork: n must be 1..%d", FORK_MAX);
    pthread_mutex_lock(&st->accel_lock);
    bool kvm = st->accel == VM_ACCEL_KVM; /* resolved: the parent exists */
    pthread_mutex_unlock(&st->accel_lock);
    int ram = -1, sfd = -1;
    int r = freeze_parent(st, parent, &child_specs[0], kvm, &ram, &sfd, err, errlen);
    if (r < 0)
        return r;
    /* the children in parallel: each restore is mostly waiting on its VMM
     * and its guest */
    struct restore_job jobs[FORK_MAX];
    pthread_t th[FORK_MAX];
    bool started[FORK_MAX] = {false};
    uint64_t t0 = now_mono_us();
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = (struct restore_job){.st = st, .spec = &child_specs[i], .kvm = kvm, .ram_fd = ram,
                                       .state_fd = sfd, .afd = -1, .r = -EIO};
        if (pthread_create(&th[i], NULL, restore_main, &jobs[i]) == 0)
            started[i] = true;
        else
            restore_main(&jobs[i]);
    }
    for (unsigned i = 0; i < n; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    /* the children's mappings hold F now; the daemon keeps no copy */
    close(ram);
    close(sfd);
    for (unsigned i = 0; i < n && r == 0; i++)
        if (jobs[i].r < 0)
            r = jail_err(err, errlen, jobs[i].r, "fork: child %u: %s", i + 1, jobs[i].err);
    if (r < 0) {
        for (unsigned i = 0; i < n; i++)
            if (jobs[i].r == 0) {
                close(jobs[i].afd);
                vm_instance_free(st, jobs[i].in);
            }
        return r;
    }
    for (unsigned i = 0; i < n; i++) {
        children[i] = jobs[i].in;
        agent_fds[i] = jobs[i].afd;
    }
    log_info("vm %s: %u fork child(ren) restored in %.1f ms", vm_instance_id(parent), n,
             (now_mono_us() - t0) / 1000.0);
    return 0;
}
