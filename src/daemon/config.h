/* config.h - airlockd's command line. Parsed once in main(), read-only after. */
#ifndef AIRLOCK_CONFIG_H
#define AIRLOCK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct config {
    char listen_host[256];
    uint16_t listen_port;
    char *socket_path;   /* NULL: no unix socket */
    char e2b_listen_host[256]; /* --e2b-listen (docs/e2b.md); port 0: off */
    uint16_t e2b_listen_port;
    char *state_dir;
    char *region;
    unsigned max_sandboxes;
    unsigned max_timeout_s;
    unsigned default_timeout_s;
    /* longest a sandbox may stay paused (its lifetime clock stands still
     * meanwhile); past it the reaper destroys it as expired */
    unsigned max_paused_s;
    /* longest timeout_s of one code/exec call; 0 in a call means this many.
     * Defaults to max_timeout_s: a call may run as long as a sandbox lives. */
    unsigned max_call_timeout_s;
    unsigned max_memory_mb;
    uint64_t max_upload_bytes;
    /* per-key admission (admission.c); 0 turns a limit off */
    double rate_limit;              /* requests per second, token bucket */
    unsigned rate_burst;            /* bucket size */
    unsigned max_concurrent;        /* requests of one key in flight */
    unsigned max_sandboxes_per_key; /* live sandboxes of one key */
    bool admin_unlimited;           /* admin keys skip the three per-key limits */
    /* failed authentications per client address (IPv4 address, IPv6 /64,
     * unix socket peer uid): refill rate per second and bucket size */
    double auth_fail_rate;
    unsigned auth_fail_burst;
    /* warm pool (pool.c): ready sandboxes of the default shape */
    unsigned pool_size; /* baseline; 0 disables the pool */
    unsigned pool_max;  /* adaptive ceiling, >= pool_size */
    char *agent_path;
    char *runner_path;
    char *zygote_path;   /* airlock-zygote */
    char *warmup;        /* NULL: the zygote's default warm-up */
    bool no_zygote;      /* every REPL is exec'd */
    char *warm_languages; /* runners besides Python's started with each sandbox ("r,javascript"; "" none) */
    bool cgroup_favordynmods; /* remount cgroup2 with favordynmods at start */
    char *template_cache; /* template build cache by spec hash; "" disables it */
    char *scope;         /* NULL: derived from state_dir (main.c) */
    /* backends: which one a create without "isolation" gets, and the vm
     * backend's inputs (src/vm/vm.c) */
    int isolation;       /* enum isolation (backend.h) */
    char *vm_dir;        /* kernel/, initramfs.cpio, host.erofs (default: vm/ next to airlockd) */
    char *vm_accel;      /* auto, kvm or tcg */
    bool vm_no_snapshots; /* every VM boots cold */
    /* the state database (store.c) */
    bool init_state;          /* set a damaged or empty database aside, start anew */
    bool check_integrity;     /* full integrity_check and audit chain at start */
    uint64_t audit_max_rows;  /* 0: no limit */
    uint64_t audit_max_age_s; /* 0: no limit */
    enum log_level log_level;
};

/* 0 on success, 1 if --help was printed (exit 0), -EINVAL after printing the
 * problem to stderr (exit 2). */
int config_parse(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);

#endif
