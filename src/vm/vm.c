/* vm.c - the vm backend: one QEMU microvm per sandbox (docs/vm.md).
 *
 * create: open the guest's kernel, initramfs and the template's root image,
 * make the two socket pairs (agent stream, QMP), build the command line
 * (qemu.c), start the jailed VMM (spawn.c) and greet its monitor. The
 * daemon's end of the agent pair is the sandbox's protocol stream; the
 * guest's agent (src/agent/guest.c) answers on it once it has booted.
 *
 * What the guest runs from (vm/ at build time, `make vm`):
 *   <vm-dir>/kernel/vmlinuz     Debian's cloud kernel (vm/fetch-kernel.sh)
 *   <vm-dir>/initramfs.cpio     the static agent as /init + modules
 *   <vm-dir>/host.erofs         the `host` template's root image
 * A built template brings its own image.erofs (templates.c).
 */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "util.h"
#include "warmup.h"

#define QMP_TIMEOUT_MS 5000
#define KVM_PROBE_MS 8000 /* a KVM guest boots to its agent in well under a second */

struct vm_state {
    struct vm_files files;
    const char *warmup;           /* the host template's (backend_config), NULL: default_warmup */
    struct vm_snapshots *snaps;   /* NULL: every create boots cold (--vm-snapshots off) */
    enum vm_accel want;
    struct cgroup_ctx cg;
    struct vm_spawner *spawner;
    unsigned tsc_khz;

    pthread_mutex_t accel_lock; /* the three below; held across the probe */
    enum vm_accel accel;        /* resolved: KVM or TCG; AUTO until the first create */
    int accel_error;            /* forced kvm that failed its probe: every create fails */
    char accel_why[256];
    pthread_t prober;           /* decides the accelerator at start, off the request path */
    bool prober_started;
    pthread_mutex_t lock;       /* the uid slots */
    unsigned next_slot;
    bool slot_used[VM_SLOTS];
};

struct backend_instance {
    char id[SANDBOX_ID_LEN + 1];
    struct cgroup_ctx cg;
    pid_t pid;
    int pidfd;
    int qmp_fd;
    int stderr_fd; /* read end of the VMM's stdout/stderr: why it failed to start */
    int slot;
};

/* What a VMM said before it failed: its last line, for the error message. */
static void vmm_last_words(struct backend_instance *in, char *buf, size_t len)
{
    buf[0] = '\0';
    if (in->stderr_fd < 0)
        return;
    char text[4096];
    ssize_t n = read(in->stderr_fd, text, sizeof(text) - 1);
    if (n <= 0)
        return;
    text[n] = '\0';
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *last = strrchr(text, '\n');
    snprintf(buf, len, "%.300s", last ? last + 1 : text);
}

static void *prober_main(void *arg);

static int path_in(char *buf, size_t len, const char *dir, const char *name, char *err, size_t errlen)
{
    if (strfmt(buf, len, "%s/%s", dir, name) < 0)
        return jail_err(err, errlen, -ENAMETOOLONG, "%s/%s", dir, name);
    if (access(buf, R_OK) < 0)
        return jail_err(err, errlen, -errno, "%s (build it with `make vm`)", buf);
    return 0;
}

static int find_files(struct vm_files *f, const char *dir, char *err, size_t errlen)
{
    int r;
    if ((r = path_in(f->kernel, sizeof(f->kernel), dir, "kernel/vmlinuz", err, errlen)) < 0 ||
        (r = path_in(f->initrd, sizeof(f->initrd), dir, "initramfs.cpio", err, errlen)) < 0 ||
        (r = path_in(f->host_image, sizeof(f->host_image), dir, "host.erofs", err, errlen)) < 0)
        return r;
    char vpath[PATH_MAX];
    snprintf(vpath, sizeof(vpath), "%s/kernel/kernel.version", dir);
    if (read_file_small(vpath, f->kernel_version, sizeof(f->kernel_version)) < 0)
        snprintf(f->kernel_version, sizeof(f->kernel_version), "unknown");
    f->kernel_version[strcspn(f->kernel_version, "\n")] = '\0';
    if (access(VM_QEMU, X_OK) < 0)
        return jail_err(err, errlen, -errno, "%s (install qemu-system-x86)", VM_QEMU);
    return 0;
}

static int vm_init(void **state, const struct backend_config *cfg, char *err, size_t errlen)
{
    struct vm_state *st = calloc(1, sizeof(*st));
    if (!st)
        return jail_err(err, errlen, -ENOMEM, "vm backend");
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->accel_lock, NULL);
    int r = find_files(&st->files, cfg->vm_dir ? cfg->vm_dir : "", err, errlen);
    if (r == 0 && (r = vm_accel_parse(cfg->vm_accel ? cfg->vm_accel : "auto", &st->want)) < 0)
        jail_err(err, errlen, r, "--vm-accel %s: expected auto, kvm or tcg", cfg->vm_accel);
    if (r == 0)
        r = cgroup_detect(&st->cg.mode, err, errlen);
    if (r == 0) {
        /* a cgroup parent of its own beside the jail's: each backend's
         * init kills only what its own dead predecessor left */
        snprintf(st->cg.parent, sizeof(st->cg.parent), "%s-vm", cfg->scope ? cfg->scope : CGROUP_PARENT);
        r = cgroup_init_parents(&st->cg, err, errlen);
    }
    if (r == 0) {
        int n = cgroup_recover(&st->cg);
        if (n > 0)
            log_info("vm: killed %d VMM(s) a previous daemon left", n);
    }
    if (r == 0)
        r = vm_spawner_start(&st->spawner, err, errlen);
    if (r == 0 && cfg->vm_snapshots && (r = vm_snapshots_new(&st->snaps)) < 0)
        jail_err(err, errlen, r, "vm snapshot cache");
    st->warmup = cfg->warmup;
    if (r < 0) {
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->accel_lock);
        free(st);
        return r;
    }
    st->accel = st->want == VM_ACCEL_TCG ? VM_ACCEL_TCG : VM_ACCEL_AUTO;
    st->tsc_khz = vm_host_tsc_khz();
    /* the KVM probe boots a guest: at start, so the first create finds the
     * verdict made (or waits for it on accel_lock) */
    if (st->accel == VM_ACCEL_AUTO)
        st->prober_started = pthread_create(&st->prober, NULL, prober_main, st) == 0;
    log_info("vm: kernel %s, qemu %s, accel %s", st->files.kernel_version, VM_QEMU, vm_accel_name(st->want));
    *state = st;
    return 0;
}

static int slot_alloc(struct vm_state *st)
{
    pthread_mutex_lock(&st->lock);
    int slot = -ENOSPC;
    for (unsigned i = 0; i < VM_SLOTS; i++) {
        unsigned s = (st->next_slot + i) % VM_SLOTS;
        if (!st->slot_used[s]) {
            st->slot_used[s] = true;
            st->next_slot = (s + 1) % VM_SLOTS;
            slot = (int)s;
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return slot;
}

static void slot_free(struct vm_state *st, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&st->lock);
    st->slot_used[slot] = false;
    pthread_mutex_unlock(&st->lock);
}

struct vm_state *vm_state_of(void *state) { return state; }
struct vm_snapshots *vm_snapshot_cache(struct vm_state *st) { return st->snaps; }
int vm_instance_qmp(const struct backend_instance *in) { return in->qmp_fd; }
const char *vm_host_image(struct vm_state *st) { return st->files.host_image; }

const char *vm_warmup_of(struct vm_state *st, const struct sandbox_spec *spec)
{
    if (spec->tmpl && spec->tmpl->rootfs)
        return spec->tmpl->warmup && spec->tmpl->warmup[0] ? spec->tmpl->warmup : NULL;
    return st->warmup ? st->warmup : default_warmup;
}

void vm_instance_free(struct vm_state *st, struct backend_instance *in)
{
    if (in->pidfd >= 0) {
        (void)syscall(SYS_pidfd_send_signal, in->pidfd, SIGKILL, NULL, 0);
        while (waitpid(in->pid, NULL, __WALL) < 0 && errno == EINTR)
            ;
        close(in->pidfd);
    }
    if (in->qmp_fd >= 0)
        close(in->qmp_fd);
    if (in->stderr_fd >= 0)
        close(in->stderr_fd);
    (void)cgroup_destroy(&in->cg, in->id);
    slot_free(st, in->slot);
    free(in);
}

int vm_start(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, enum vm_ram ram, int ram_fd,
             struct backend_instance **out, int *agent_fd, char *err, size_t errlen)
{
    const char *image = spec->tmpl && spec->tmpl->image ? spec->tmpl->image : st->files.host_image;
    struct backend_instance *in = calloc(1, sizeof(*in));
    if (!in)
        return jail_err(err, errlen, -ENOMEM, "vm instance");
    memcpy(in->id, spec->id, sizeof(in->id));
    in->cg = st->cg;
    in->pidfd = in->qmp_fd = in->stderr_fd = -1;
    in->slot = slot_alloc(st);
    int r = 0;
    cleanup_fd int kfd = -1, ifd = -1, imgfd = -1;
    int agent[2] = {-1, -1}, qmp[2] = {-1, -1}, errp[2] = {-1, -1};
    struct stat kvm_st = {0};
    char **argv = NULL;
    if (in->slot < 0) {
        r = jail_err(err, errlen, -ENOSPC, "vm: all %d VMM uids are in use", VM_SLOTS);
        goto fail;
    }
    if ((kfd = open(st->files.kernel, O_RDONLY | O_CLOEXEC)) < 0 ||
        (ifd = open(st->files.initrd, O_RDONLY | O_CLOEXEC)) < 0) {
        r = jail_err(err, errlen, -errno, "open the guest kernel or initramfs");
        goto fail;
    }
    if ((imgfd = open(image, O_RDONLY | O_CLOEXEC)) < 0) {
        r = jail_err(err, errlen, -errno, "open the root image %s", image);
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, agent) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qmp) < 0 ||
        pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
        r = jail_err(err, errlen, -errno, "socketpair");
        goto fail;
    }
    in->stderr_fd = steal_fd(&errp[0]);
    if (kvm && stat("/dev/kvm", &kvm_st) < 0) {
        r = jail_err(err, errlen, -errno, "stat /dev/kvm");
        goto fail;
    }
    unsigned vcpus = (spec->cpu_millis + 999) / 1000;
    struct vm_qemu_opts qo = {
        .kvm = kvm,
        .vcpus = vcpus ? vcpus : 1,
        .memory_mb = (unsigned)(spec->memory_bytes >> 20),
        .scratch_bytes = spec->tmpfs_bytes,
        .tsc_khz = kvm ? 0 : st->tsc_khz,
        .hostname = spec->hostname,
        .ram = ram,
        .incoming = ram == VM_RAM_PRIVATE,
    };
    if ((r = vm_qemu_argv(&qo, &argv)) < 0) {
        jail_err(err, errlen, r, "qemu command line");
        goto fail;
    }
    struct vm_spawn_req req = {
        .argv = argv,
        .fds = {agent[1], qmp[1], kfd, ifd, imgfd, ram == VM_RAM_ANON ? -1 : ram_fd},
        .uid = VM_UID_BASE + (unsigned)in->slot,
        .kvm = kvm,
        .kvm_rdev = kvm_st.st_rdev,
        .stderr_fd = errp[1],
        .cg = &st->cg,
        .cg_id = in->id,
        .lim = {.memory_bytes = spec->memory_bytes + VM_OVERHEAD_BYTES + ((uint64_t)VM_TCG_TB_MB << 20),
                .cpu_millis = spec->cpu_millis,
                .pids_max = 64 + 4 * qo.vcpus},
    };
    if ((r = vm_spawn(st->spawner, &req, err, errlen)) < 0)
        goto fail;
    in->pid = req.pid;
    in->pidfd = req.pidfd;
    close_fd(&agent[1]);
    close_fd(&qmp[1]);
    close_fd(&errp[1]);
    in->qmp_fd = steal_fd(&qmp[0]);
    if ((r = qmp_handshake(in->qmp_fd, QMP_TIMEOUT_MS, err, errlen)) < 0) {
        char said[512];
        vmm_last_words(in, said, sizeof(said));
        if (said[0])
            snprintf(err, errlen, "the VMM failed to start: %s", said);
        goto fail;
    }
    /* the daemon's reader blocks on it (backend.h) */
    *agent_fd = steal_fd(&agent[0]);
    *out = in;
    free(argv);
    return 0;
fail:
    free(argv);
    close_fd(&agent[0]), close_fd(&agent[1]), close_fd(&qmp[0]), close_fd(&qmp[1]), close_fd(&errp[1]);
    vm_instance_free(st, in);
    return r;
}

int vm_guest_call(int fd, uint8_t type, uint32_t id, const char *json, unsigned timeout_ms, uint8_t *rtype,
                  json_t **reply, char *err, size_t errlen)
{
    uint64_t deadline = now_mono_ms() + timeout_ms;
    int r = proto_send(fd, type, 0, id, json, strlen(json));
    if (r < 0)
        return jail_err(err, errlen, r, "send to the guest's agent");
    for (;;) {
        uint64_t now = now_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return jail_err(err, errlen, -ETIMEDOUT, "the guest's agent did not answer within %u ms", timeout_ms);
        struct proto_hdr h;
        uint8_t *payload = NULL;
        if ((r = proto_recv(fd, &h, &payload)) < 0)
            return jail_err(err, errlen, r, "the guest's agent stream");
        bool last = h.req_id == id && (h.type == PROTO_OK || h.type == PROTO_ERROR || (h.flags & PROTO_F_END));
        if (last) {
            if (rtype)
                *rtype = h.type;
            if (reply)
                *reply = json_loadb((const char *)payload, h.len, 0, NULL);
        }
        free(payload);
        if (last)
            return 0;
    }
}

/* HELLO answered within KVM_PROBE_MS: this host's KVM runs our guest. */
static int probe_kvm(struct vm_state *st, char *why, size_t whylen)
{
    if (access("/dev/kvm", R_OK | W_OK) < 0)
        return jail_err(why, whylen, -errno, "/dev/kvm");
    struct template_info host = {.name = "host"};
    struct sandbox_spec spec = {.tmpl = &host, .memory_bytes = 256ull << 20, .cpu_millis = 1000,
                                .tmpfs_bytes = 16ull << 20, .hostname = "probe"};
    memcpy(spec.id, "sb_kvmprobe", 12);
    struct backend_instance *in = NULL;
    int fd = -1;
    int r = vm_start(st, &spec, true, VM_RAM_ANON, -1, &in, &fd, why, whylen);
    if (r < 0)
        return r;
    uint8_t type = 0;
    r = vm_guest_call(fd, PROTO_HELLO, 1, "{\"version\":1}", KVM_PROBE_MS, &type, NULL, why, whylen);
    if (r == -ETIMEDOUT)
        jail_err(why, whylen, r, "a KVM guest did not reach its agent within %d ms", KVM_PROBE_MS);
    else if (r == 0 && type != PROTO_OK)
        r = jail_err(why, whylen, -EPROTO, "the KVM guest's agent refused HELLO");
    close(fd);
    vm_instance_free(st, in);
    return r;
}

/* The accelerator for this and every later create, decided once. */
static int resolve_accel(struct vm_state *st, bool *kvm, char *err, size_t errlen)
{
    pthread_mutex_lock(&st->accel_lock);
    if (st->accel == VM_ACCEL_AUTO && !st->accel_error) {
        char why[256] = "";
        /* the probe runs under the lock: concurrent first creates wait for
         * its verdict instead of each booting a KVM guest */
        int r = probe_kvm(st, why, sizeof(why));
        if (r == 0) {
            st->accel = VM_ACCEL_KVM;
            log_info("vm: KVM works here; VMs run on KVM");
        } else if (st->want == VM_ACCEL_KVM) {
            st->accel_error = r;
            snprintf(st->accel_why, sizeof(st->accel_why), "--vm-accel kvm: %s", why);
            log_error("vm: %s", st->accel_why);
        } else {
            st->accel = VM_ACCEL_TCG;
            snprintf(st->accel_why, sizeof(st->accel_why), "%s", why);
            log_warn("vm: KVM unusable (%s); VMs run on TCG (software emulation, slower)", why);
        }
    }
    int r = st->accel_error;
    if (r < 0)
        snprintf(err, errlen, "%s", st->accel_why);
    *kvm = st->accel == VM_ACCEL_KVM;
    pthread_mutex_unlock(&st->accel_lock);
    return r;
}

static void *prober_main(void *arg)
{
    bool kvm;
    char err[256];
    (void)resolve_accel(arg, &kvm, err, sizeof(err));
    return NULL;
}

static int vm_create(void *state, const struct sandbox_spec *spec, struct backend_instance **inst, int *agent_fd,
                     char *err, size_t errlen)
{
    struct vm_state *st = state;
    bool kvm = false;
    int r = resolve_accel(st, &kvm, err, errlen);
    if (r < 0)
        return r;
    if (!st->snaps)
        return vm_start(st, spec, kvm, VM_RAM_ANON, -1, inst, agent_fd, err, errlen);
    return vm_snapshot_restore(st, spec, kvm, inst, agent_fd, err, errlen);
}

static int vm_destroy(void *state, struct backend_instance *in)
{
    if (in)
        vm_instance_free(state, in);
    return 0;
}

static int vm_oom_kills(struct backend_instance *in, uint64_t *count)
{
    return cgroup_oom_kills(&in->cg, in->id, count);
}

static int vm_memory_usage(struct backend_instance *in, uint64_t *bytes)
{
    return cgroup_memory_usage(&in->cg, in->id, bytes);
}

static pid_t vm_agent_pid(struct backend_instance *in) { return in->pid; }

static void vm_fini(void *state)
{
    struct vm_state *st = state;
    if (!st)
        return;
    if (st->prober_started)
        pthread_join(st->prober, NULL);
    vm_spawner_stop(st->spawner);
    vm_snapshots_free(st->snaps);
    cgroup_remove_parents(&st->cg);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->accel_lock);
    free(st);
}

const struct backend_ops vm_backend_ops = {
    .name = "vm",
    .init = vm_init,
    .create = vm_create,
    .destroy = vm_destroy,
    .oom_kills = vm_oom_kills,
    .memory_usage = vm_memory_usage,
    .agent_pid = vm_agent_pid,
    .fini = vm_fini,
};
