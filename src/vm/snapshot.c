/* snapshot.c - warm snapshots: boot a template's VM once, start every VM of
 * its shape from that.
 *
 * Under TCG a cold boot to a ready REPL is seconds, and `import pandas`
 * another ten: no sandbox should pay that. So for each (root image, guest
 * memory, vCPUs, accelerator, warm-up) the first create boots one VM whose
 * guest RAM is a memfd mapped shared (VM_RAM_SHARED), lets its agent run
 * the warm-up (default_warmup: numpy and pandas imported and exercised),
 * stops it and migrates its device state (~60 KB) into a second memfd with
 * QMP's x-ignore-shared (the RAM is already in the first). Then it is
 * killed: the snapshot is the two memfds, sealed, and nothing else.
 *
 * A restore starts a VMM with the RAM memfd mapped private and read-only
 * (VM_RAM_PRIVATE: MAP_PRIVATE, so every page it writes becomes its own
 * anonymous copy) and `-incoming defer`, feeds it the state by QMP
 * (migrate-incoming fd:) and lets it run. Unchanged pages stay shared
 * between every VM of the snapshot; what a user writes exists only in its
 * own VMM's private memory and dies with it.
 *
 * What the warm-up leaves behind must not be shared after a restore, so
 * before a restored VM is handed out its agent gets GUEST_SYNC (host entropy
 * added to the guest's pool and the CRNG reseeded, the clock set from the
 * host) and the REPL reseeds Python's `random` and NumPy's global
 * generator. The snapshot never holds user data: it is taken before any
 * sandbox exists, of a VM nobody was given.
 *
 * The memfds live in the daemon: a daemon that dies takes its snapshots
 * with it, and nothing is written to disk.
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "util.h"

#define SNAP_MAX 4                /* shapes kept; the least recently used goes */
#define BOOT_TIMEOUT_MS 60000     /* cold boot to the agent's HELLO, TCG on a loaded host */
#define WARMUP_TIMEOUT_MS 300000  /* `import pandas` under TCG is ~12 s; a big template more */
#define MIGRATE_TIMEOUT_MS 60000
#define QMP_MS 5000
#define QUIESCE_MS 250
/* A snapshot is proven by its first restore; one that cannot be restored
 * is taken again, this many times per create. */
#define SNAP_RETRIES 2

struct vm_snapshot {
    char key[512];
    int ram_fd;   /* guest RAM, sealed */
    int state_fd; /* device state, sealed */
    bool ready, building;
    bool proven;  /* a restore of it has answered */
    int error;    /* the last build failed: the next create tries again */
    unsigned refs;
    uint64_t used_ms;
};

struct vm_snapshots {
    pthread_mutex_t lock;
    pthread_cond_t built;
    struct vm_snapshot *s[SNAP_MAX];
};

int vm_snapshots_new(struct vm_snapshots **out)
{
    struct vm_snapshots *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->built, NULL);
    *out = c;
    return 0;
}

static void snap_free(struct vm_snapshot *s)
{
    if (!s)
        return;
    if (s->ram_fd >= 0)
        close(s->ram_fd);
    if (s->state_fd >= 0)
        close(s->state_fd);
    free(s);
}

void vm_snapshots_free(struct vm_snapshots *c)
{
    if (!c)
        return;
    for (int i = 0; i < SNAP_MAX; i++)
        snap_free(c->s[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->built);
    free(c);
}

/* Everything a restore depends on: the files (by identity and change
 * time), the guest's size, the accelerator and the warm-up. */
static int snap_key(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, const char *image, char *key,
                    size_t len)
{
    struct stat si, sk, sr;
    if (stat(image, &si) < 0 || stat(st->files.kernel, &sk) < 0 || stat(st->files.initrd, &sr) < 0)
        return -errno;
    const char *warmup = vm_warmup_of(st, spec);
    unsigned long h = 5381; /* the warm-up's text, djb2: a cache key, not a defence */
    for (const char *p = warmup ? warmup : ""; *p; p++)
        h = h * 33 + (unsigned char)*p;
    /* a new kernel or initramfs (make vm: a new agent) is a new snapshot */
    return strfmt(key, len, "%lx:%lx:%lld.%ld:%lld|k=%lx.%lld|i=%lx.%lld.%ld|mem=%llu|cpu=%u|scratch=%llu|%s|w=%lx",
                  (unsigned long)si.st_dev, (unsigned long)si.st_ino, (long long)si.st_mtim.tv_sec, si.st_mtim.tv_nsec,
                  (long long)si.st_size, (unsigned long)sk.st_ino, (long long)sk.st_mtim.tv_sec,
                  (unsigned long)sr.st_ino, (long long)sr.st_mtim.tv_sec, sr.st_mtim.tv_nsec,
                  (unsigned long long)spec->memory_bytes, spec->cpu_millis, (unsigned long long)vm_scratch_bytes(spec),
                  kvm ? "kvm" : "tcg", h);
}

int vm_wait_migration(int qmp, const char *what, char *err, size_t errlen)
{
    uint64_t deadline = now_mono_ms() + MIGRATE_TIMEOUT_MS;
    for (;;) {
        json_t *ret = NULL;
        int r = qmp_command(qmp, "query-migrate", NULL, QMP_MS, &ret, err, errlen);
        if (r < 0)
            return r;
        const char *status = json_string_value(json_object_get(ret, "status"));
        bool done = status && strcmp(status, "completed") == 0;
        bool failed = status && (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0);
        if (failed) {
            const char *desc = json_string_value(json_object_get(ret, "error-desc"));
            r = jail_err(err, errlen, -EIO, "%s: migration %s%s%s", what, status, desc ? ": " : "", desc ? desc : "");
        }
        json_decref(ret);
        if (done || failed)
            return r;
        if (now_mono_ms() > deadline)
            return jail_err(err, errlen, -ETIMEDOUT, "%s: migration did not finish in %d s", what,
                            MIGRATE_TIMEOUT_MS / 1000);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int vm_ignore_shared(int qmp, bool on, char *err, size_t errlen)
{
    json_t *caps = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "x-ignore-shared", "state", on);
    int r = caps ? qmp_command(qmp, "migrate-set-capabilities", caps, QMP_MS, NULL, err, errlen) : -ENOMEM;
    json_decref(caps);
    return r;
}

/* The RESULT of a RUN_CODE: 0 if it raised nothing. */
static int run_python(int fd, uint32_t id, const char *code, unsigned timeout_ms, const char *what, char *err,
                      size_t errlen)
{
    json_t *req = json_pack("{s:s,s:s,s:I,s:{},s:i}", "code", code, "language", "python", "timeout_ms",
                            (json_int_t)timeout_ms, "env", "max_output", 4096);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text)
        return jail_err(err, errlen, -ENOMEM, "%s", what);
    uint8_t type = 0;
    json_t *res = NULL;
    int r = vm_guest_call(fd, PROTO_RUN_CODE, id, text, timeout_ms + 5000, &type, &res, err, errlen);
    free(text);
    if (r == 0) {
        json_t *e = json_object_get(res, "error");
        if (type != PROTO_RESULT || json_is_object(e))
            r = jail_err(err, errlen, -EREMOTEIO, "%s: %s", what,
                         json_is_object(e) ? json_string_value(json_object_get(e, "name")) : "the agent refused it");
    }
    json_decref(res);
    return r;
}

/* Seal a memfd: nobody writes, grows or shrinks it again, whatever its
 * mode. The RAM's stays 0666: QEMU 7.2 opens a memory-backend-file
 * read-write even for a private mapping (its readonly=on would map guest
 * RAM read-only), and the seals, not the mode, are what keep a VMM that
 * opens it from changing what every later restore starts from: write(2)
 * and shared writable mappings of a sealed memfd fail with EPERM. */
int vm_memfd_seal(int fd, mode_t mode)
{
    if (fchmod(fd, mode) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return -errno;
    return 0;
}

/* Boot, warm, stop, save, kill. */
static int snap_build(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, struct vm_snapshot *s,
                      char *err, size_t errlen)
{
    uint64_t t0 = now_mono_ms();
    int ram = memfd_create("airlock-vm-snapshot-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    int state = memfd_create("airlock-vm-snapshot-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    struct backend_instance *in = NULL;
    int afd = -1, r = 0;
    if (ram < 0 || state < 0) {
        r = jail_err(err, errlen, -errno, "memfd_create");
        goto out;
    }
    /* the builder VMM (another uid) opens it through /proc/self/fd: it is
     * reachable only by who holds the descriptor, the daemon and that VMM */
    /* Every page allocated now, by the daemon: a restore's read fault on a
     * hole of a private shmem mapping would allocate that page into the
     * shared memfd, charged to the VM that touched it first, on top of its
     * own copy when it writes (seen here: a 512 MiB guest's VMM killed by
     * its cgroup at 300 MiB of such pages). Populated, a restore faults in
     * the snapshot's page and copies it on write: its cgroup holds its own
     * pages only, and the snapshot costs its guest RAM once. */
    if (ftruncate(ram, (off_t)spec->memory_bytes) < 0 || fallocate(ram, 0, 0, (off_t)spec->memory_bytes) < 0 ||
        fchmod(ram, 0666) < 0) {
        r = jail_err(err, errlen, -errno, "allocate the snapshot's RAM");
        goto out;
    }
    if ((r = vm_start(st, spec, kvm, VM_RAM_SHARED, ram, &in, &afd, err, errlen)) < 0)
        goto out;
    uint8_t type = 0;
    if ((r = vm_guest_call(afd, PROTO_HELLO, 1, "{\"version\":1}", BOOT_TIMEOUT_MS, &type, NULL, err, errlen)) < 0)
        goto out;
    uint64_t t_boot = now_mono_ms();
    const char *warmup = vm_warmup_of(st, spec);
    /* an empty call too: the REPL is up and has answered once */
    if ((r = run_python(afd, 2, warmup ? warmup : "pass", WARMUP_TIMEOUT_MS, "snapshot warm-up", err, errlen)) < 0)
        goto out;
    /* Quiesce before the stop: one more round trip (the agent's loop is idle
     * and its output drained), then time for the guest to finish handling
     * the interrupts that traffic raised. A snapshot taken with a virtio
     * interrupt in flight restores into guests that never hear their port
     * again (seen here about one build in three without this). */
    if ((r = vm_guest_call(afd, PROTO_HELLO, 3, "{\"version\":1}", BOOT_TIMEOUT_MS, &type, NULL, err, errlen)) < 0)
        goto out;
    struct timespec quiet = {0, QUIESCE_MS * 1000000L};
    nanosleep(&quiet, NULL);
    uint64_t t_warm = now_mono_ms();
    int qmp = vm_instance_qmp(in);
    json_t *mig = json_pack("{s:s}", "uri", "fd:snapshot");
    if ((r = qmp_command(qmp, "stop", NULL, QMP_MS, NULL, err, errlen)) < 0 ||
        (r = vm_ignore_shared(qmp, true, err, errlen)) < 0 ||
        (r = qmp_send_fd(qmp, "snapshot", state, QMP_MS, err, errlen)) < 0 ||
        (r = qmp_command(qmp, "migrate", mig, QMP_MS, NULL, err, errlen)) < 0 ||
        (r = vm_wait_migration(qmp, "snapshot", err, errlen)) < 0) {
        json_decref(mig);
        goto out;
    }
    json_decref(mig);
    vm_instance_free(st, in); /* killed and reaped: no shared writable mapping is left */
    in = NULL;
    if ((r = vm_memfd_seal(ram, 0666)) < 0 || (r = vm_memfd_seal(state, 0444)) < 0) {
        jail_err(err, errlen, r, "seal the snapshot");
        goto out;
    }
    struct stat sst;
    fstat(state, &sst);
    log_info("vm: snapshot taken in %llu ms (boot %llu, warm-up %llu, save %llu; %lld KB of device state)",
             (unsigned long long)(now_mono_ms() - t0), (unsigned long long)(t_boot - t0),
             (unsigned long long)(t_warm - t_boot), (unsigned long long)(now_mono_ms() - t_warm),
             (long long)sst.st_size / 1024);
    s->ram_fd = steal_fd(&ram);
    s->state_fd = steal_fd(&state);
out:
    if (afd >= 0)
        close(afd);
    if (in)
        vm_instance_free(st, in);
    if (ram >= 0)
        close(ram);
    if (state >= 0)
        close(state);
    return r;
}

/* The snapshot of key, ready and referenced, building it if need be. */
static int snap_get(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, const char *key,
                    struct vm_snapshot **out, char *err, size_t errlen)
{
    struct vm_snapshots *c = st->snaps;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct vm_snapshot *s = NULL;
        int free_slot = -1, lru = -1;
        for (int i = 0; i < SNAP_MAX; i++) {
            if (!c->s[i]) {
                free_slot = free_slot < 0 ? i : free_slot;
                continue;
            }
            if (strcmp(c->s[i]->key, key) == 0)
                s = c->s[i];
            else if (!c->s[i]->refs && !c->s[i]->building && (lru < 0 || c->s[i]->used_ms < c->s[lru]->used_ms))
                lru = i;
        }
        if (s && s->ready) {
            s->refs++;
            s->used_ms = now_mono_ms();
            pthread_mutex_unlock(&c->lock);
            *out = s;
            return 0;
        }
        if (s && s->building) {
            pthread_cond_wait(&c->built, &c->lock);
            continue;
        }
        if (!s) {
            if (free_slot < 0 && lru >= 0) {
                snap_free(c->s[lru]); /* restored VMs keep their own mappings */
                c->s[lru] = NULL;
                free_slot = lru;
            }
            if (free_slot < 0) {
                pthread_mutex_unlock(&c->lock);
                return jail_err(err, errlen, -EBUSY, "vm: every snapshot slot is being built or used");
            }
            s = calloc(1, sizeof(*s));
            if (!s) {
                pthread_mutex_unlock(&c->lock);
                return jail_err(err, errlen, -ENOMEM, "vm snapshot");
            }
            snprintf(s->key, sizeof(s->key), "%s", key);
            s->ram_fd = s->state_fd = -1;
            c->s[free_slot] = s;
        }
        /* ours to build (new, or a failed one tried again) */
        s->building = true;
        pthread_mutex_unlock(&c->lock);
        int r = snap_build(st, spec, kvm, s, err, errlen);
        pthread_mutex_lock(&c->lock);
        s->building = false;
        s->ready = r == 0;
        s->error = r;
        pthread_cond_broadcast(&c->built);
        if (r < 0) {
            pthread_mutex_unlock(&c->lock);
            return r;
        }
    }
}

/* The guest's kernel and Python must not share the snapshot's randomness,
 * nor its clock. */
static int resync(int afd, char *err, size_t errlen)
{
    char hex[129];
    int r = random_hex(hex, 64);
    if (r < 0)
        return jail_err(err, errlen, r, "getrandom");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char msg[256];
    snprintf(msg, sizeof(msg), "{\"entropy\":\"%s\",\"realtime_ns\":%lld}", hex,
             (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    uint8_t type = 0;
    if ((r = vm_guest_call(afd, PROTO_GUEST_SYNC, 1, msg, QMP_MS, &type, NULL, err, errlen)) < 0)
        return r;
    if (type != PROTO_OK)
        return jail_err(err, errlen, -EPROTO, "the guest's agent refused GUEST_SYNC");
    static const char reseed[] = "def __airlock_reseed():\n"
                                 "    import random, sys\n"
                                 "    random.seed()\n"
                                 "    m = sys.modules.get('numpy.random')\n"
                                 "    if m is not None:\n"
                                 "        m.seed()\n"
                                 "__airlock_reseed()\n"
                                 "del __airlock_reseed\n";
    uint64_t t0 = now_mono_us();
    r = run_python(afd, 2, reseed, 10000, "reseed Python after a restore", err, errlen);
    log_debug("vm: Python reseeded in %.1f ms", (now_mono_us() - t0) / 1000.0);
    return r;
}

/* After a restore of s: a first success proves it; a failure of one never
 * proven means the snapshot is bad (not this VM), and it is dropped so the
 * next get takes it again. Releases the caller's reference. */
static void snap_settle(struct vm_state *st, struct vm_snapshot *s, int r, bool *bad)
{
    struct vm_snapshots *c = st->snaps;
    pthread_mutex_lock(&c->lock);
    *bad = false;
    if (r == 0) {
        s->proven = true;
    } else if (r == -ETIMEDOUT && !s->proven && s->ready) { /* its guest never answered */
        s->ready = false;
        *bad = true;
        log_warn("vm: a new snapshot could not be restored; taking it again");
    }
    s->refs--;
    pthread_mutex_unlock(&c->lock);
}

int vm_restore_image(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, int ram_fd, int state_fd,
                     struct backend_instance **out, int *agent_fd, char *err, size_t errlen)
{
    struct backend_instance *in = NULL;
    int afd = -1, sfd = -1;
    uint64_t t0 = now_mono_us();
    int r = vm_start(st, spec, kvm, VM_RAM_PRIVATE, ram_fd, &in, &afd, err, errlen);
    uint64_t t_start = now_mono_us(), t_mig = 0, t_cont = 0;
    if (r == 0) {
        /* a description of its own: the migration reads from offset 0 */
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", state_fd);
        sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
            r = jail_err(err, errlen, -errno, "reopen the snapshot's state");
    }
    int qmp = in ? vm_instance_qmp(in) : -1;
    json_t *inc = json_pack("{s:s}", "uri", "fd:snapshot");
    if (r == 0 && !inc)
        r = jail_err(err, errlen, -ENOMEM, "restore");
    /* the state in, the guest running, then its randomness and clock its own */
    if (r == 0 && (r = vm_ignore_shared(qmp, true, err, errlen)) == 0 &&
        (r = qmp_send_fd(qmp, "snapshot", sfd, QMP_MS, err, errlen)) == 0 &&
        (r = qmp_command(qmp, "migrate-incoming", inc, QMP_MS, NULL, err, errlen)) == 0 &&
        (r = vm_wait_migration(qmp, "restore", err, errlen)) == 0 && (t_mig = now_mono_us()) &&
        (r = qmp_command(qmp, "cont", NULL, QMP_MS, NULL, err, errlen)) == 0 && (t_cont = now_mono_us()))
        r = resync(afd, err, errlen);
    if (r == 0)
        log_debug("vm: restored in %.1f ms (vmm %.1f, state %.1f, cont %.1f, reseed %.1f)",
                  (now_mono_us() - t0) / 1000.0, (t_start - t0) / 1000.0, (t_mig - t_start) / 1000.0,
                  (t_cont - t_mig) / 1000.0, (now_mono_us() - t_cont) / 1000.0);
    json_decref(inc);
    if (sfd >= 0)
        close(sfd);
    if (r < 0) {
        if (in) {
            json_t *ret = NULL;
            char e2[128], said[320];
            if (qmp_command(qmp, "query-status", NULL, 1000, &ret, e2, sizeof(e2)) == 0) {
                char *t = json_dumps(ret, JSON_COMPACT);
                log_warn("vm: restore failed with the guest %s", t ? t : "?");
                free(t);
                json_decref(ret);
            } else {
                vm_instance_last_words(in, said, sizeof(said));
                log_warn("vm: restore failed, the VMM is gone%s%s", said[0] ? ": " : "", said);
            }
        }
        if (afd >= 0)
            close(afd);
        if (in)
            vm_instance_free(st, in);
        return r;
    }
    *out = in;
    *agent_fd = afd;
    return 0;
}

static int restore_once(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, bool *bad_snapshot,
                        struct backend_instance **out, int *agent_fd, char *err, size_t errlen)
{
    const char *image = spec->tmpl && spec->tmpl->image ? spec->tmpl->image : NULL;
    char key[512];
    int r = snap_key(st, spec, kvm, image ? image : st->files.host_image, key, sizeof(key));
    if (r < 0)
        return jail_err(err, errlen, r, "stat the root image");
    struct vm_snapshot *s = NULL;
    if ((r = snap_get(st, spec, kvm, key, &s, err, errlen)) < 0)
        return r;
    r = vm_restore_image(st, spec, kvm, s->ram_fd, s->state_fd, out, agent_fd, err, errlen);
    snap_settle(st, s, r, bad_snapshot);
    return r;
}

int vm_snapshot_restore(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, struct backend_instance **out,
                        int *agent_fd, char *err, size_t errlen)
{
    int r = -EIO;
    for (int i = 0; i <= SNAP_RETRIES; i++) {
        bool bad = false;
        r = restore_once(st, spec, kvm, &bad, out, agent_fd, err, errlen);
        if (r == 0 || !bad)
            break;
    }
    return r;
}
