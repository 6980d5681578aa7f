/* vm.h - internals of the vm backend (docs/vm.md): every sandbox in its own
 * QEMU microvm, the same agent as PID 1 of the guest.
 *
 *   vm.c      the backend ops: init, create, destroy, counters; the KVM probe
 *   vmm.c     one VMM: started, greeted over QMP, talked to, killed
 *   snapshot.c  warm snapshots and restores from them
 *   qemu.c    the QEMU command line of one sandbox (pure: tested alone)
 *   spawn.c   the jailed VMM: a child in new namespaces with a tmpfs root,
 *             an unprivileged uid, no capabilities, its own cgroup, killed
 *             with the daemon; started from one long-lived thread
 *   accel.c   --vm-accel parsing, the host TSC rate
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

#include <jansson.h>

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
    VM_FD_RAM = 8,    /* a snapshot's guest RAM (memfd), or closed */
    VM_NFDS = 6,
};

/* Where guest RAM lives (snapshot.c says why). */
enum vm_ram {
    VM_RAM_ANON,    /* QEMU's private anonymous memory: a cold boot */
    VM_RAM_SHARED,  /* the snapshot's memfd, shared: the VM a snapshot is taken of */
    VM_RAM_PRIVATE, /* the snapshot's sealed memfd mapped copy-on-write: a restore */
    VM_RAM_LOAD,    /* a new memfd, shared, -incoming defer and -S: a fork's loader, whose
                       guest never runs (fork.c) */
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
    int fds[VM_NFDS];   /* become 3..8 (-1: left closed); the caller keeps ownership */
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
    unsigned pids;
    unsigned tsc_khz; /* 0: not given (KVM) */
    const char *hostname;
    enum vm_ram ram; /* VM_RAM_PRIVATE is a restore: -incoming defer, the state comes by QMP */
};
/* A NULL-terminated argv in one allocation (free it with free()). */
int vm_qemu_argv(const struct vm_qemu_opts *o, char ***argv);

/* accel.c */
int vm_accel_parse(const char *s, enum vm_accel *out);
const char *vm_accel_name(enum vm_accel a);
/* The host TSC frequency in kHz (the guest's tsc_early_khz under TCG), 0 if unknown. */
unsigned vm_host_tsc_khz(void);

struct vm_snapshots; /* snapshot.c's cache */

/* The backend's state (vm.c makes it; vmm.c and snapshot.c read it). */
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
    pthread_mutex_t lock;       /* the uid slots */
    unsigned next_slot;
    bool slot_used[VM_SLOTS];
};


/* snapshot.c: a warm snapshot per (template image, memory, vCPUs, accel). */
int vm_snapshots_new(struct vm_snapshots **out);
void vm_snapshots_free(struct vm_snapshots *c);
/* A sandbox from spec's snapshot: restored, reseeded, its clock set. */
int vm_snapshot_restore(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, struct backend_instance **out,
                        int *agent_fd, char *err, size_t errlen);
/* A VM from an image (guest RAM memfd + device state memfd, both sealed):
 * restored with its RAM mapped copy-on-write, reseeded, its clock set. For
 * snapshots and forks (fork.c). */
int vm_restore_image(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, int ram_fd, int state_fd,
                     struct backend_instance **out, int *agent_fd, char *err, size_t errlen);
/* Poll query-migrate until completed (0) or failed. */
int vm_wait_migration(int qmp, const char *what, char *err, size_t errlen);
/* The x-ignore-shared migration capability on or off. */
int vm_ignore_shared(int qmp, bool on, char *err, size_t errlen);
/* Seal a memfd (no write, grow, shrink, further seals) with this mode. */
int vm_memfd_seal(int fd, mode_t mode);

/* fork.c: full-state fork (backend op fork). */
int vm_fork(void *state, struct backend_instance *parent, const struct sandbox_spec *child_specs, unsigned n,
            struct backend_instance **children, int *agent_fds, char *err, size_t errlen);

/* vmm.c: one VMM, for vm.c and snapshot.c */
const char *vm_warmup_of(struct vm_state *st, const struct sandbox_spec *spec);
uint64_t vm_scratch_bytes(const struct sandbox_spec *spec);
/* Start one VMM: a cold boot (ram VM_RAM_ANON), the VM a snapshot is taken
 * of (VM_RAM_SHARED, ram_fd its memfd) or a restore (VM_RAM_PRIVATE). */
int vm_start(struct vm_state *st, const struct sandbox_spec *spec, bool kvm, enum vm_ram ram, int ram_fd,
             struct backend_instance **out, int *agent_fd, char *err, size_t errlen);
void vm_instance_free(struct vm_state *st, struct backend_instance *in);
int vm_instance_qmp(const struct backend_instance *in);
/* The last line the VMM wrote to its stderr ("" if none): why it died. */
void vm_instance_last_words(struct backend_instance *in, char *buf, size_t len);
pid_t vm_instance_pid(const struct backend_instance *in);
const struct cgroup_ctx *vm_instance_cgroup(const struct backend_instance *in);
const char *vm_instance_id(const struct backend_instance *in);
/* One request to the guest's agent on fd with a deadline: *reply gets the
 * final frame's JSON (OK, RESULT or ERROR: *type says which). */
int vm_guest_call(int fd, uint8_t type, uint32_t id, const char *json, unsigned timeout_ms, uint8_t *rtype,
                  json_t **reply, char *err, size_t errlen);

/* qmp.c: one QMP session on a connected stream fd. */
int qmp_handshake(int fd, unsigned timeout_ms, char *err, size_t errlen);
/* Run a command; *ret (may be NULL) gets its "return" value (a new
 * reference). Events that arrive first are skipped. */
int qmp_command(int fd, const char *cmd, json_t *args, unsigned timeout_ms, json_t **ret, char *err,
                size_t errlen);
/* getfd: hand QEMU a descriptor under a name (SCM_RIGHTS), for "fd:NAME" URIs. */
int qmp_send_fd(int fd, const char *name, int passed, unsigned timeout_ms, char *err, size_t errlen);

#endif
