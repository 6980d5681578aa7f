/* backend.h - the isolation backend interface.
 *
 * A backend turns a sandbox_spec into a running airlock-agent (PID 1 of the
 * sandbox) and hands the daemon one connected stream fd that speaks the
 * protocol of src/common/proto.h. Everything the daemon does inside a
 * sandbox goes over that fd, whatever the backend: `jail` (Linux
 * namespaces, src/jail/) or `vm` (a QEMU microvm per sandbox, src/vm/).
 *
 * Functions return 0 or -errno; on failure they write a human-readable
 * message naming the failed operation ("mount /proc: Permission denied")
 * into err (errlen bytes), which the daemon passes on to the API client.
 */
#ifndef AIRLOCK_BACKEND_H
#define AIRLOCK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_ID_LEN 35 /* "sb_" + 32 hex chars (128 random bits) */

/* What the host gives a template to build a root from. */
struct template_info {
    const char *name;     /* "host" */
    const char *rootfs;   /* directory holding a root filesystem, or NULL for
                             the synthetic `host` template (host /usr + generated /etc) */
    const char *image;    /* the same tree as an erofs image (vm backend), or NULL for
                             `host`, whose image the vm backend brings itself */
    const char *warmup;   /* a built template's warm-up Python, run in each of its
                             sandboxes before it is handed out (build.c); NULL or
                             "" for none. The host template's is the zygote's --warmup. */
    const char *warm_languages; /* a built template's "warm_languages" ("r,javascript"): its
                             sandboxes start those runners with the agent; NULL: the
                             daemon's --warm-languages */
};

struct sandbox_spec {
    char id[SANDBOX_ID_LEN + 1];
    const struct template_info *tmpl;
    uint64_t memory_bytes;   /* cgroup memory limit, no swap */
    uint32_t cpu_millis;     /* 1000 = one CPU */
    uint32_t pids_max;       /* processes+threads */
    uint64_t tmpfs_bytes;    /* size cap of the one tmpfs behind /tmp, /data, /home/user,
                                /dev/shm; keep it below memory_bytes (mnt.c says why) */
    const char *agent_path;  /* unused by jail (it execs the daemon's sealed memfd) */
    const char *runner_path; /* host path of airlock_runner.py, bound read-only at /opt/airlock
                                with airlock_runner.R and .mjs from its directory */
    const char *warm_languages; /* the agent's --warm ("r,javascript"): runners started with it; NULL or "": none */
    const char *hostname;    /* "sandbox" */
};

/* What a daemon tells its backend once, at init. */
struct backend_config {
    const char *agent_path; /* host path of airlock-agent */
    /* This daemon's share of host resources (the jail's cgroup parent). At
     * init the backend destroys whatever a dead daemon left under it, so two
     * daemons on one host must use different scopes. */
    const char *scope;
    /* airlock-zygote (src/zygote/): NULL runs none. runner_path is what it
     * imports; warmup its --warmup code (NULL: its default, numpy and
     * pandas when importable). Only host-template sandboxes use it. */
    const char *zygote_path;
    const char *runner_path;
    const char *warmup;
    /* remount cgroup2 with favordynmods (host-wide: jail/dynmods.c) */
    bool cgroup_favordynmods;
    /* vm backend: the directory `make vm` fills (kernel/, initramfs.cpio,
     * host.erofs) and --vm-accel (auto, kvm, tcg) */
    const char *vm_dir;
    const char *vm_accel;
    bool vm_snapshots; /* start VMs from warm snapshots (false: every one boots cold) */
    /* at most this many sandboxes live at once (the warm pool included):
     * host-wide pools are checked against it at init */
    unsigned max_sandboxes;
};

struct backend_instance; /* backend-private */

/* One sandbox's open-egress link: the host end's name, both ends'
 * IPv4 addresses (network order) on one small subnet. */
struct egress_link {
    char host_if[16];
    uint32_t host_addr, sandbox_addr;
    unsigned prefix;
};

struct backend_ops {
    const char *name;
    /* Once at daemon start: detect cgroup v1/v2, create the parent cgroups,
     * seal the agent binary, and destroy whatever a dead daemon left behind. */
    int (*init)(void **state, const struct backend_config *cfg, char *err, size_t errlen);
    /* Start a sandbox. On success *inst is set and *agent_fd is the daemon's
     * end of the protocol stream (CLOEXEC, blocking). The agent has not yet
     * been sent HELLO. */
    int (*create)(void *state, const struct sandbox_spec *spec, struct backend_instance **inst, int *agent_fd,
                  char *err, size_t errlen);
    /* Kill everything in the sandbox, wait for it, release cgroups and
     * memory. Idempotent; frees inst. */
    int (*destroy)(void *state, struct backend_instance *inst);
    /* Number of OOM kills inside this sandbox so far (cgroup counter). */
    int (*oom_kills)(struct backend_instance *inst, uint64_t *count);
    /* Bytes of memory charged to this sandbox now (cgroup usage). Optional. */
    int (*memory_usage)(struct backend_instance *inst, uint64_t *bytes);
    /* Stop every process of the sandbox where it stands (no CPU), keeping
     * its memory, files and connections; resume lets them run on. The
     * registry calls them only on a running / paused sandbox, one at a
     * time; destroy must work on a paused one. Optional (NULL: the backend
     * cannot pause, the API answers 409). */
    int (*pause)(void *state, struct backend_instance *inst, char *err, size_t errlen);
    int (*resume)(void *state, struct backend_instance *inst, char *err, size_t errlen);
    /* Host pid of the agent, for logs and records. */
    pid_t (*agent_pid)(struct backend_instance *inst);
    /* Host pid of the running, ready Python zygote, 0 if none (healthz).
     * Optional. */
    pid_t (*zygote_pid)(void *state);
    /* A socket (CLOEXEC) bound to 127.0.0.1:port inside the sandbox's own
     * network namespace: SOCK_STREAM listening, for the daemon's egress
     * proxy (egress_proxy.h), or SOCK_DGRAM for its DNS resolver
     * (egress_dns.h). Optional: NULL, the backend offers no egress. */
    int (*egress_listen)(struct backend_instance *inst, int type, uint16_t port, int *fd);
    /* Open egress's link (egress_open.h): a veth whose peer is the
     * sandbox's eth0, addressed and routed from outside. Optional. */
    int (*egress_link_up)(struct backend_instance *inst, const struct egress_link *l);
    /* Abort the sandbox's sockets to non-loopback peers (how many in
     * *closed), then delete the link. inst may be NULL (already destroyed). */
    int (*egress_link_down)(struct backend_instance *inst, const struct egress_link *l, unsigned *closed);
    /* Full-state fork (docs/vm.md): n new sandboxes, one per child_specs[i]
     * (each with its own id; same template and limits as the parent), whose
     * memory, processes and files are the parent's at one instant. The
     * parent is paused only for that instant and runs on unchanged;
     * afterwards no member sees another's writes. On success children[i]
     * and agent_fds[i] are set as by create, but the agents are live
     * (their REPLs hold the parent's state: no warm-up, no REPL restart)
     * and already reseeded; on failure nothing is left. The daemon does not
     * hold the parent's lock meanwhile (its other requests go on), but no
     * destroy and no second fork of the parent run until this returns.
     * Optional: NULL, the backend cannot fork full state (the daemon then
     * copies files). */
    int (*fork)(void *state, struct backend_instance *parent, const struct sandbox_spec *child_specs, unsigned n,
                struct backend_instance **children, int *agent_fds, char *err, size_t errlen);
    void (*fini)(void *state);
};

/* Which backend a sandbox runs on (the create body's "isolation"). */
enum isolation { ISO_JAIL = 0, ISO_VM = 1, ISO_COUNT };
/* A guest's kernel, agent and warm Python need about 150 MiB of its RAM. */
#define VM_MIN_MEMORY_MB 256

extern const struct backend_ops jail_backend_ops;
extern const struct backend_ops vm_backend_ops;

#endif
