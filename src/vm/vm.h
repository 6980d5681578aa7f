/* vm.h - internals of the vm backend (docs/vm.md): every sandbox in its own
 * QEMU microvm, the same agent as PID 1 of the guest.
 *
 *   vm.c      the backend ops: init, create, destroy, counters
 *   qemu.c    the QEMU command line of one sandbox (pure: tested alone)
 *   spawn.c   the jailed VMM: a child in new namespaces with a tmpfs root,
 *             an unprivileged uid, no capabilities, its own cgroup, killed
 *             with the daemon; started from one long-lived thread
 *   accel.c   --vm-accel auto|kvm|tcg: the KVM probe
 *   qmp.c     the QMP client (jansson) on each VMM's monitor socket
 */
#ifndef AIRLOCK_VM_H
#define AIRLOCK_VM_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "jail_shared.h" /* cgroups, child reports: the VMM is jailed by the jail's code */

#define VM_QEMU "/usr/bin/qemu-system-x86_64"
/* Each VMM runs as its own host uid: VM_UID_BASE + slot. Below the jail's
 * ranges (JAIL_UID_BASE), one id per VM. */
#define VM_UID_BASE 190000u
#define VM_SLOTS 4096
/* QEMU's own memory beside guest RAM (TCG's translation cache is capped at
 * VM_TCG_TB_MB; device state, libraries, page tables): the cgroup allows
 * guest RAM plus this, without swap. */
#define VM_TCG_TB_MB 64
#define VM_OVERHEAD_BYTES (192ull << 20)
/* The fds the VMM gets, at these numbers (spawn.c puts them there). */
enum vm_fd {
    VM_FD_AGENT = 3,  /* chardev socket: the agent's virtio serial port */
    VM_FD_QMP = 4,    /* chardev socket: the QMP monitor */
    VM_FD_KERNEL = 5, /* -kernel /proc/self/fd/5 */
    VM_FD_INITRD = 6, /* -initrd /proc/self/fd/6 */
    VM_FD_IMAGE = 7,  /* -add-fd: the root image, read-only */
    VM_NFDS = 5,
};

enum vm_accel { VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG };

struct vm_files {
    char kernel[PATH_MAX];
    char initrd[PATH_MAX];
    char host_image[PATH_MAX];
    char kernel_version[128];
};

/* One VMM to start (spawn.c). argv and every string are built before the
 * clone: the child only makes system calls. */
struct vm_spawn_req {
    char *const *argv;
    int fds[VM_NFDS];   /* become 3..7; the caller keeps ownership */
    uid_t uid;          /* the VMM's host uid and gid */
    bool kvm;           /* a /dev/kvm node of its own is in its /dev */
    dev_t kvm_rdev;     /* the host's /dev/kvm device number */
    int stderr_fd;      /* becomes its fd 2 (non-blocking pipe: a VMM never waits on us) */
    const struct cgroup_ctx *cg;
    const char *cg_id;
    struct cgroup_limits lim;
    /* out */
    pid_t pid;
    int pidfd;
};

struct vm_spawner; /* the long-lived thread VMMs are started from */
int vm_spawner_start(struct vm_spawner **out, char *err, size_t errlen);
void vm_spawner_stop(struct vm_spawner *s);
/* Start one jailed VMM; 0 with req->pid/pidfd set, or -errno and err. */
int vm_spawn(struct vm_spawner *s, struct vm_spawn_req *req, char *err, size_t errlen);

/* qemu.c: the command line. opts carries what differs per sandbox. */
struct vm_qemu_opts {
    bool kvm;
    unsigned vcpus;
    unsigned memory_mb;
    uint64_t scratch_bytes;
    unsigned tsc_khz; /* 0: not given (KVM) */
    const char *hostname;
};
/* A NULL-terminated argv in one allocation (free it with free()). */
int vm_qemu_argv(const struct vm_qemu_opts *o, char ***argv);

/* accel.c */
int vm_accel_parse(const char *s, enum vm_accel *out);
const char *vm_accel_name(enum vm_accel a);
/* The host TSC frequency in kHz (the guest's tsc_early_khz under TCG), 0 if unknown. */
unsigned vm_host_tsc_khz(void);

/* qmp.c: one QMP session on a connected stream fd. */
int qmp_handshake(int fd, unsigned timeout_ms, char *err, size_t errlen);
/* Run a command; *ret (may be NULL) gets its "return" value (a new
 * reference). Events that arrive first are skipped. */
struct json_t;
int qmp_command(int fd, const char *cmd, struct json_t *args, unsigned timeout_ms, struct json_t **ret, char *err,
                size_t errlen);

#endif
