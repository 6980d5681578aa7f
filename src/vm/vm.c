/* vm.c - the vm backend's ops: one QEMU microvm per sandbox (docs/vm.md).
 *
 * init finds the guest's files, makes the VMMs' cgroup parent (killing what a
 * dead daemon left in it), starts the spawner and the KVM probe. create
 * restores the sandbox's shape from its warm snapshot (snapshot.c), or boots
 * it cold (vmm.c) with --vm-no-snapshots; either way the daemon gets the
 * agent stream of a guest whose agent (src/agent/guest.c) is ready.
 *
 * What the guest runs from (vm/ at build time, `make vm`):
 *   <vm-dir>/kernel/vmlinuz     Debian's cloud kernel (vm/fetch-kernel.sh)
 *   <vm-dir>/initramfs.cpio     the static agent as /init + modules
 *   <vm-dir>/host.erofs         the `host` template's root image
 * A built template brings its own image.erofs (templates.c).
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "proto.h"
#include "util.h"
#include "warmup.h"

#define KVM_PROBE_MS 8000 /* a KVM guest boots to its agent in well under a second */

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
    /* The KVM probe boots a guest, so it runs at the first vm create, not
     * here: a daemon that never makes a VM (most test daemons, a jail-only
     * host) never pays its deadline (8 s where KVM hangs) at start or stop. */
    log_info("vm: kernel %s, qemu %s, accel %s", st->files.kernel_version, VM_QEMU, vm_accel_name(st->want));
    *state = st;
    return 0;
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
            snprintf(st->accel_why, sizeof(st->accel_why), "--vm-accel kvm: KVM is unusable on this host (%s)", why);
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
    return cgroup_oom_kills(vm_instance_cgroup(in), vm_instance_id(in), count);
}

static int vm_memory_usage(struct backend_instance *in, uint64_t *bytes)
{
    return cgroup_memory_usage(vm_instance_cgroup(in), vm_instance_id(in), bytes);
}

/* Pause: QMP stop halts the vCPUs (the guest's clocks stand still with them
 * under TCG); the VMM process stays, idle, with the guest's RAM. A stopped
 * VMM is killed like a running one, so destroy needs nothing more. */
#define VM_PAUSE_QMP_MS 5000
static int vm_pause(void *state, struct backend_instance *in, char *err, size_t errlen)
{
    (void)state;
    return qmp_command(vm_instance_qmp(in), "stop", NULL, VM_PAUSE_QMP_MS, NULL, err, errlen);
}

static int vm_resume(void *state, struct backend_instance *in, char *err, size_t errlen)
{
    (void)state;
    return qmp_command(vm_instance_qmp(in), "cont", NULL, VM_PAUSE_QMP_MS, NULL, err, errlen);
}

static pid_t vm_agent_pid(struct backend_instance *in) { return vm_instance_pid(in); }

static void vm_fini(void *state)
{
    struct vm_state *st = state;
    if (!st)
        return;
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
    .pause = vm_pause,
    .resume = vm_resume,
    .fork = vm_fork,
    .fini = vm_fini,
};
