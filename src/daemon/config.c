#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: airlockd [OPTIONS]\n"
            "Airlock host daemon: REST API for sealed code-execution sandboxes.\n\n"
            "  --listen HOST:PORT     TCP address (default 127.0.0.1:7070)\n"
            "  --socket PATH          also serve the API on a unix socket\n"
            "  --e2b-listen HOST:PORT also serve an E2B-compatible API there (docs/e2b.md)\n"
            "  --state-dir DIR        SQLite state and admin key (default /var/lib/airlock)\n"
            "  --region NAME          region served here (default local)\n"
            "  --max-sandboxes N      live sandboxes at most (default 64)\n"
            "  --max-timeout S        longest sandbox lifetime in seconds (default 86400)\n"
            "  --default-timeout S    lifetime when the client gives none (default 300)\n"
            "  --max-paused S         longest a sandbox may stay paused, its lifetime stopped; then it is\n"
            "                         destroyed as expired (default 3600)\n"
            "  --max-call-timeout S   longest timeout of one code/exec call (default: --max-timeout);\n"
            "                         a call's timeout_s 0 means no limit beyond the sandbox's life\n"
            "  --max-memory-mb N      largest memory_mb (default 16384)\n"
            "  --max-upload-mb N      largest file upload (default 1024)\n"
            "  --agent PATH           airlock-agent binary (default: next to airlockd)\n"
            "  --runner PATH          airlock_runner.py (default: next to airlockd)\n"
            "  --scope NAME           this daemon's cgroup parent; cleared of a dead daemon's\n"
            "                         sandboxes at start (default: airlock, or airlock-<hash>\n"
            "                         for a non-default --state-dir)\n"
            "  --cgroup-favordynmods  remount cgroup2 with favordynmods (host-wide) so that\n"
            "                         moving a process into a sandbox's cgroup never waits\n"
            "                         for an RCU grace period (docs/benchmarks.md)\n"
            "  --template-cache DIR   template builds cached by spec hash, shared by daemons\n"
            "                         (default /var/cache/airlock/templates; \"\" turns it off)\n"
            "  --log-level LEVEL      debug, info or warn (default info)\n"
            "\nIsolation backends (docs/vm.md):\n"
            "  --isolation jail|vm    backend of a create that names none (default jail)\n"
            "  --vm-dir DIR           the vm backend's guest kernel, initramfs and host image,\n"
            "                         built by `make vm` (default: vm/ next to airlockd)\n"
            "  --vm-accel auto|kvm|tcg\n"
            "                         auto boots one guest under KVM with a short deadline and\n"
            "                         falls back to TCG, saying why (default auto)\n"
            "  --vm-no-snapshots      boot every VM cold instead of restoring it from its\n"
            "                         shape's warm snapshot (docs/vm.md)\n"
            "\nState database (<state-dir>/airlock.db; docs/api.md, \"State and backups\"):\n"
            "  --init-state           an existing database that is empty or damaged is kept\n"
            "                         aside (airlock.db.bad-<time>) and a new one created;\n"
            "                         without it airlockd refuses to start on one\n"
            "  --check-integrity      full PRAGMA integrity_check and audit chain check at\n"
            "                         start (default: quick_check)\n"
            "  --audit-max-rows N     audit events kept; older ones are dropped behind a\n"
            "                         checkpoint event (default 1000000; 0: keep all)\n"
            "  --audit-max-age S      audit events older than S seconds are dropped the same\n"
            "                         way (default 0: no age limit)\n"
            "  --help                 show this help\n"
            "\nPer API key (429 when exceeded; 0 turns a limit off):\n"
            "  --rate-limit R         requests per second (default 100; decimals ok)\n"
            "  --rate-burst N         bucket size: requests at once (default 1000)\n"
            "  --max-concurrent-requests N\n"
            "                         requests of one key in flight at once (default 32)\n"
            "  --max-sandboxes-per-key N\n"
            "                         live sandboxes of one key (default 20; --max-sandboxes\n"
            "                         still caps them all)\n"
            "  --admin-unlimited      admin keys skip these per-key limits (default: no)\n"
            "\nWarm pools (sandboxes built ahead of creates, one pool per shape):\n"
            "  --pool-size N          sandboxes of the default shape kept ready (default 2;\n"
            "                         0 turns every pool off)\n"
            "  --pool-max N           ready sandboxes of all shapes together, the most the\n"
            "                         pools grow to when creates come fast (default 8;\n"
            "                         never below --pool-size)\n"
            "\nPython zygote (a pre-imported Python that forks each sandbox's REPL):\n"
            "  --zygote PATH          airlock-zygote binary (default: next to airlockd)\n"
            "  --warmup CODE          Python it runs before forking (default: import numpy\n"
            "                         and pandas when they are importable)\n"
            "  --no-zygote            exec a fresh python3 for every REPL instead\n"
            "  --warm-languages LIST  runners besides Python's each sandbox starts with, so\n"
            "                         its first cell of those finds them ready (r,javascript;\n"
            "                         \"\" none: each starts at its first call; default none)\n"
            "\nPer client address (IPv4 address, IPv6 /64, uid on the unix socket):\n"
            "  --auth-fail-burst N    failed authentications (wrong or malformed key) allowed\n"
            "                         at once (default 20); past that, every request with a\n"
            "                         key is answered 429 without looking at the key\n"
            "  --auth-fail-rate R     failed authentications per second after the burst\n"
            "                         (default 1; decimals ok; 0 turns this limit off)\n"
            "\n"
            "Environment: AIRLOCK_API_KEY, if set, is accepted as an admin key.\n");
}

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "airlockd: %s: expected an integer in %" PRIu64 "..%" PRIu64 ", got '%s'\n", opt, min,
                max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* A rate: a decimal number of events per second, 0 (off) or >= 0.001. */
static int parse_rate(const char *opt, const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v == 0 || (v >= 0.001 && v <= max))) {
        fprintf(stderr, "airlockd: %s: expected 0 or a number in 0.001..%g, got '%s'\n", opt, max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_hostport(const char *opt, const char *s, char *host, size_t hostlen, uint16_t *port_out)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen) {
        fprintf(stderr, "airlockd: %s: expected HOST:PORT, got '%s'\n", opt, s);
        return -EINVAL;
    }
    uint64_t port;
    char what[48];
    snprintf(what, sizeof(what), "%s port", opt);
    if (parse_uint(what, colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port_out = (uint16_t)port;
    return 0;
}

static int parse_listen(struct config *cfg, const char *s)
{
    return parse_hostport("--listen", s, cfg->listen_host, sizeof(cfg->listen_host), &cfg->listen_port);
}

static int parse_e2b_listen(struct config *cfg, const char *s)
{
    return parse_hostport("--e2b-listen", s, cfg->e2b_listen_host, sizeof(cfg->e2b_listen_host),
                          &cfg->e2b_listen_port);
}

/* <directory of /proc/self/exe>/name */
static char *next_to_self(const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return strdup(name);
    exe[n] = '\0';
    char *path;
    if (asprintf(&path, "%s/%s", dirname(exe), name) < 0)
        return NULL;
    return path;
}

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    return *dst ? 0 : -ENOMEM;
}

/* ---- the option table: one row per flag, what it sets and what it accepts */

enum opt_kind {
    K_UINT,   /* unsigned field, min..max */
    K_U64,    /* uint64_t field, min..max, shifted left by `shift` */
    K_RATE,   /* double field, 0 or 0.001..max */
    K_STR,    /* char * field, strdup'd */
    K_FLAG,   /* bool field, set to true */
    K_CUSTOM, /* parse(cfg, optarg) */
};

struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t off; /* of the field in struct config */
    uint64_t min, max;
    unsigned shift;
    int (*parse)(struct config *cfg, const char *arg);
};

#define F(field) offsetof(struct config, field)

static int parse_region(struct config *cfg, const char *arg)
{
    if (!*arg) {
        fprintf(stderr, "airlockd: --region: empty name\n");
        return -EINVAL;
    }
    return set_str(&cfg->region, arg);
}

static int parse_log_level(struct config *cfg, const char *arg)
{
    if (strcmp(arg, "debug") == 0)
        cfg->log_level = LOG_LVL_DEBUG;
    else if (strcmp(arg, "info") == 0)
        cfg->log_level = LOG_LVL_INFO;
    else if (strcmp(arg, "warn") == 0)
        cfg->log_level = LOG_LVL_WARN;
    else {
        fprintf(stderr, "airlockd: --log-level: expected debug, info or warn, got '%s'\n", arg);
        return -EINVAL;
    }
    return 0;
}

static int parse_isolation(struct config *cfg, const char *arg)
{
    if (strcmp(arg, "jail") == 0)
        cfg->isolation = ISO_JAIL;
    else if (strcmp(arg, "vm") == 0)
        cfg->isolation = ISO_VM;
    else {
        fprintf(stderr, "airlockd: --isolation: expected jail or vm, got '%s'\n", arg);
        return -EINVAL;
    }
    return 0;
}

static int parse_vm_accel(struct config *cfg, const char *arg)
{
    if (strcmp(arg, "auto") != 0 && strcmp(arg, "kvm") != 0 && strcmp(arg, "tcg") != 0) {
        fprintf(stderr, "airlockd: --vm-accel: expected auto, kvm or tcg, got '%s'\n", arg);
        return -EINVAL;
    }
    return set_str(&cfg->vm_accel, arg);
}

static const struct opt_def OPTS[] = {
    {"listen", K_CUSTOM, 0, 0, 0, 0, parse_listen},
    {"socket", K_STR, F(socket_path)},
    {"e2b-listen", K_CUSTOM, 0, 0, 0, 0, parse_e2b_listen},
    {"state-dir", K_STR, F(state_dir)},
    {"region", K_CUSTOM, 0, 0, 0, 0, parse_region},
    {"max-sandboxes", K_UINT, F(max_sandboxes), 1, 100000},
    {"max-timeout", K_UINT, F(max_timeout_s), 1, 365u * 86400u},
    {"default-timeout", K_UINT, F(default_timeout_s), 1, 365u * 86400u},
    {"max-paused", K_UINT, F(max_paused_s), 1, 365u * 86400u},
    {"max-call-timeout", K_UINT, F(max_call_timeout_s), 1, 365u * 86400u},
    {"max-memory-mb", K_UINT, F(max_memory_mb), 64, 1u << 24},
    {"max-upload-mb", K_U64, F(max_upload_bytes), 1, 1u << 24, 20},
    {"agent", K_STR, F(agent_path)},
    {"runner", K_STR, F(runner_path)},
    {"scope", K_STR, F(scope)},
    {"log-level", K_CUSTOM, 0, 0, 0, 0, parse_log_level},
    {"rate-limit", K_RATE, F(rate_limit), 0, 1000000},
    {"rate-burst", K_UINT, F(rate_burst), 1, 1000000},
    {"max-concurrent-requests", K_UINT, F(max_concurrent), 0, 100000},
    {"max-sandboxes-per-key", K_UINT, F(max_sandboxes_per_key), 0, 100000},
    {"admin-unlimited", K_FLAG, F(admin_unlimited)},
    {"auth-fail-rate", K_RATE, F(auth_fail_rate), 0, 1000000},
    {"auth-fail-burst", K_UINT, F(auth_fail_burst), 1, 1000000},
    {"pool-size", K_UINT, F(pool_size), 0, 1000},
    {"pool-max", K_UINT, F(pool_max), 0, 1000},
    {"zygote", K_STR, F(zygote_path)},
    {"warmup", K_STR, F(warmup)},
    {"no-zygote", K_FLAG, F(no_zygote)},
    {"warm-languages", K_STR, F(warm_languages)},
    {"cgroup-favordynmods", K_FLAG, F(cgroup_favordynmods)},
    {"template-cache", K_STR, F(template_cache)},
    {"init-state", K_FLAG, F(init_state)},
    {"check-integrity", K_FLAG, F(check_integrity)},
    {"audit-max-rows", K_U64, F(audit_max_rows), 0, UINT64_C(1) << 40},
    {"audit-max-age", K_U64, F(audit_max_age_s), 0, UINT64_C(100) * 365 * 86400},
    {"isolation", K_CUSTOM, 0, 0, 0, 0, parse_isolation},
    {"vm-dir", K_STR, F(vm_dir)},
    {"vm-accel", K_CUSTOM, 0, 0, 0, 0, parse_vm_accel},
    {"vm-no-snapshots", K_FLAG, F(vm_no_snapshots)},
};
#define N_OPTS (sizeof(OPTS) / sizeof(OPTS[0]))
#define OPT_BASE 256 /* getopt values: OPT_BASE + row; OPT_HELP after them */
#define OPT_HELP (OPT_BASE + (int)N_OPTS)

/* Apply one row to cfg with its argument (NULL for a flag). */
static int apply_opt(struct config *cfg, const struct opt_def *o, const char *arg)
{
    char *field = (char *)cfg + o->off;
    char flag[64];
    snprintf(flag, sizeof(flag), "--%s", o->name);
    uint64_t v;
    int r;
    switch (o->kind) {
    case K_UINT:
        if ((r = parse_uint(flag, arg, o->min, o->max, &v)) == 0)
            *(unsigned *)(void *)field = (unsigned)v;
        return r;
    case K_U64:
        if ((r = parse_uint(flag, arg, o->min, o->max, &v)) == 0)
            *(uint64_t *)(void *)field = v << o->shift;
        return r;
    case K_RATE: return parse_rate(flag, arg, (double)o->max, (double *)(void *)field);
    case K_STR: return set_str((char **)(void *)field, arg);
    case K_FLAG: *(bool *)(void *)field = true; return 0;
    case K_CUSTOM: return o->parse(cfg, arg);
    }
    return -EINVAL;
}

static int set_defaults(struct config *cfg)
{
    *cfg = (struct config){
        .listen_host = "127.0.0.1",
        .listen_port = 7070,
        .max_sandboxes = 64,
        .max_timeout_s = 86400,
        .default_timeout_s = 300,
        .max_paused_s = 3600,
        .max_memory_mb = 16384,
        .max_upload_bytes = 1024ull << 20,
        /* Generous for one client: bench/bench.py's tight loops (hundreds of
         * ~0.5 ms run_code calls in a row, bursts of 10 creates) stay within
         * the burst, yet a runaway client cannot take all of the daemon. */
        .rate_limit = 100,
        .rate_burst = 1000,
        .max_concurrent = 32,
        .max_sandboxes_per_key = 20,
        /* 20 wrong keys, then one a second: ~86400 guesses a day against
         * 2^128 possible keys; a client with a stale key notices at once. */
        .auth_fail_rate = 1,
        .auth_fail_burst = 20,
        .pool_size = 2,
        .pool_max = 8,
        .audit_max_rows = 1000000,
        .log_level = LOG_LVL_INFO,
    };
    if (set_str(&cfg->state_dir, "/var/lib/airlock") < 0 || set_str(&cfg->region, "local") < 0 ||
        set_str(&cfg->template_cache, "/var/cache/airlock/templates") < 0 || set_str(&cfg->vm_accel, "auto") < 0)
        return -ENOMEM;
    return 0;
}

/* What no single flag can check, and the defaults that depend on others. */
static int finish(struct config *cfg)
{
    if (cfg->default_timeout_s > cfg->max_timeout_s) {
        fprintf(stderr, "airlockd: --default-timeout %u exceeds --max-timeout %u\n", cfg->default_timeout_s,
                cfg->max_timeout_s);
        return -EINVAL;
    }
    /* No call outlives its sandbox, so by default none is cut shorter than
     * the longest lifetime; a larger cap than that would mean nothing. */
    if (cfg->max_call_timeout_s == 0 || cfg->max_call_timeout_s > cfg->max_timeout_s)
        cfg->max_call_timeout_s = cfg->max_timeout_s;
    /* --pool-max is a ceiling for the adaptive size, not a second knob that
     * can contradict --pool-size; and a disabled pool stays disabled. */
    if (cfg->pool_max < cfg->pool_size)
        cfg->pool_max = cfg->pool_size;
    if (cfg->pool_size == 0)
        cfg->pool_max = 0;
    if (!cfg->agent_path && !(cfg->agent_path = next_to_self("airlock-agent")))
        return -ENOMEM;
    if (!cfg->runner_path && !(cfg->runner_path = next_to_self("airlock_runner.py")))
        return -ENOMEM;
    if (!cfg->zygote_path && !(cfg->zygote_path = next_to_self("airlock-zygote")))
        return -ENOMEM;
    if (!cfg->vm_dir && !(cfg->vm_dir = next_to_self("vm")))
        return -ENOMEM;
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
    struct option opts[N_OPTS + 2];
    for (size_t i = 0; i < N_OPTS; i++)
        opts[i] = (struct option){OPTS[i].name, OPTS[i].kind == K_FLAG ? no_argument : required_argument, NULL,
                                  OPT_BASE + (int)i};
    opts[N_OPTS] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[N_OPTS + 1] = (struct option){NULL, 0, NULL, 0};

    int r = set_defaults(cfg);
    if (r < 0)
        return r;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c < OPT_BASE || c >= OPT_HELP) {
            usage(stderr);
            return -EINVAL;
        }
        if ((r = apply_opt(cfg, &OPTS[c - OPT_BASE], optarg)) < 0)
            return r;
    }
    if (optind < argc) {
        fprintf(stderr, "airlockd: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return finish(cfg);
}

void config_free(struct config *cfg)
{
    free(cfg->socket_path);
    free(cfg->state_dir);
    free(cfg->region);
    free(cfg->agent_path);
    free(cfg->runner_path);
    free(cfg->zygote_path);
    free(cfg->warmup);
    free(cfg->warm_languages);
    free(cfg->scope);
    free(cfg->template_cache);
    free(cfg->vm_dir);
    free(cfg->vm_accel);
}
