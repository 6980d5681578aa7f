/* vmm.c - one VMM: started (jailed, spawn.c) with its command line
 * (qemu.c) and its descriptors, greeted over QMP, talked to over the agent
 * stream, killed. Used by the backend's ops (vm.c) for cold boots and the
 * KVM probe, and by snapshot.c for the VMs snapshots are taken of and
 * restored into.
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

#include "log.h"
#include "proto.h"
#include "util.h"
#include "warmup.h"

#define QMP_TIMEOUT_MS 5000

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

void vm_instance_last_words(struct backend_instance *in, char *buf, size_t len) { vmm_last_words(in, buf, len); }
int vm_instance_qmp(const struct backend_instance *in) { return in->qmp_fd; }
pid_t vm_instance_pid(const struct backend_instance *in) { return in->pid; }
const struct cgroup_ctx *vm_instance_cgroup(const struct backend_instance *in) { return &in->cg; }
const char *vm_instance_id(const struct backend_instance *in) { return in->id; }

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

/* The guest's tmpfs cap. In the jail the cap leaves 96 MiB of the cgroup to
 * the agent and the REPL; a guest's RAM also holds its kernel, page cache and
 * slab, so it leaves a quarter, at least 128 MiB and at most 256 MiB (a
 * 1 GiB guest filling its disk got the REPL OOM-killed at the jail's cap
 * instead of ENOSPC). */
uint64_t vm_scratch_bytes(const struct sandbox_spec *spec)
{
    uint64_t mem = spec->memory_bytes, keep = mem / 4;
    keep = keep < (128ull << 20) ? 128ull << 20 : keep > (256ull << 20) ? 256ull << 20 : keep;
    uint64_t cap = mem > keep ? mem - keep : mem / 2;
    return spec->tmpfs_bytes && spec->tmpfs_bytes < cap ? spec->tmpfs_bytes : cap;
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
        .scratch_bytes = vm_scratch_bytes(spec),
        .pids = spec->pids_max,
        .tsc_khz = kvm ? 0 : st->tsc_khz,
        .hostname = spec->hostname,
        .ram = ram,
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
    uint64_t t0 = now_mono_us();
    if ((r = vm_spawn(st->spawner, &req, err, errlen)) < 0)
        goto fail;
    uint64_t t_spawn = now_mono_us();
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
    log_debug("vm %s: vmm spawned in %.1f ms, QMP up %.1f ms later", in->id, (t_spawn - t0) / 1000.0,
              (now_mono_us() - t_spawn) / 1000.0);
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

