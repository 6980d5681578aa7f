#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: airlockd [OPTIONS]\n"
            "Airlock host daemon: REST API for sealed code-execution sandboxes.\n\n"
            "  --listen HOST:PORT     TCP address (default 127.0.0.1:7070)\n"
            "  --socket PATH          also serve the API on a unix socket\n"
            "  --state-dir DIR        SQLite state and admin key (default /var/lib/airlock)\n"
            "  --region NAME          region served here (default local)\n"
            "  --max-sandboxes N      live sandboxes at most (default 64)\n"
            "  --max-timeout S        longest sandbox lifetime in seconds (default 86400)\n"
            "  --default-timeout S    lifetime when the client gives none (default 300)\n"
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

static int parse_listen(struct config *cfg, const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof(cfg->listen_host)) {
        fprintf(stderr, "airlockd: --listen: expected HOST:PORT, got '%s'\n", s);
        return -EINVAL;
    }
    uint64_t port;
    if (parse_uint("--listen port", colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    memcpy(cfg->listen_host, s, (size_t)(colon - s));
    cfg->listen_host[colon - s] = '\0';
    cfg->listen_port = (uint16_t)port;
    return 0;
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

int config_parse(struct config *cfg, int argc, char **argv)
{
    enum {
        OPT_LISTEN = 256, OPT_SOCKET, OPT_STATE, OPT_REGION, OPT_MAXSB, OPT_MAXTO, OPT_DEFTO, OPT_MAXMEM,
        OPT_MAXUP, OPT_AGENT, OPT_RUNNER, OPT_SCOPE, OPT_LOGLEVEL, OPT_HELP, OPT_RATE, OPT_BURST, OPT_MAXCONC,
        OPT_MAXSBKEY, OPT_ADMINUNL, OPT_AFRATE, OPT_AFBURST, OPT_POOLSIZE, OPT_POOLMAX, OPT_TMPLCACHE,
        OPT_ZYGOTE, OPT_WARMUP, OPT_NOZYGOTE, OPT_FAVORDYN, OPT_INITSTATE, OPT_CHECKINT, OPT_AUDITROWS,
        OPT_AUDITAGE,
    };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"state-dir", required_argument, NULL, OPT_STATE},
        {"region", required_argument, NULL, OPT_REGION},
        {"max-sandboxes", required_argument, NULL, OPT_MAXSB},
        {"max-timeout", required_argument, NULL, OPT_MAXTO},
        {"default-timeout", required_argument, NULL, OPT_DEFTO},
        {"max-memory-mb", required_argument, NULL, OPT_MAXMEM},
        {"max-upload-mb", required_argument, NULL, OPT_MAXUP},
        {"agent", required_argument, NULL, OPT_AGENT},
        {"runner", required_argument, NULL, OPT_RUNNER},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {"rate-limit", required_argument, NULL, OPT_RATE},
        {"rate-burst", required_argument, NULL, OPT_BURST},
        {"max-concurrent-requests", required_argument, NULL, OPT_MAXCONC},
        {"max-sandboxes-per-key", required_argument, NULL, OPT_MAXSBKEY},
        {"admin-unlimited", no_argument, NULL, OPT_ADMINUNL},
        {"auth-fail-rate", required_argument, NULL, OPT_AFRATE},
        {"auth-fail-burst", required_argument, NULL, OPT_AFBURST},
        {"pool-size", required_argument, NULL, OPT_POOLSIZE},
        {"pool-max", required_argument, NULL, OPT_POOLMAX},
        {"zygote", required_argument, NULL, OPT_ZYGOTE},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"no-zygote", no_argument, NULL, OPT_NOZYGOTE},
        {"cgroup-favordynmods", no_argument, NULL, OPT_FAVORDYN},
        {"template-cache", required_argument, NULL, OPT_TMPLCACHE},
        {"init-state", no_argument, NULL, OPT_INITSTATE},
        {"check-integrity", no_argument, NULL, OPT_CHECKINT},
        {"audit-max-rows", required_argument, NULL, OPT_AUDITROWS},
        {"audit-max-age", required_argument, NULL, OPT_AUDITAGE},
        {NULL, 0, NULL, 0},
    };

    *cfg = (struct config){
        .listen_host = "127.0.0.1",
        .listen_port = 7070,
        .max_sandboxes = 64,
        .max_timeout_s = 86400,
        .default_timeout_s = 300,
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
        set_str(&cfg->template_cache, "/var/cache/airlock/templates") < 0)
        return -ENOMEM;

    int c;
    uint64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case OPT_LISTEN: r = parse_listen(cfg, optarg); break;
        case OPT_SOCKET: r = set_str(&cfg->socket_path, optarg); break;
        case OPT_STATE: r = set_str(&cfg->state_dir, optarg); break;
        case OPT_TMPLCACHE: r = set_str(&cfg->template_cache, optarg); break;
        case OPT_REGION:
            if (!*optarg) {
                fprintf(stderr, "airlockd: --region: empty name\n");
                return -EINVAL;
            }
            r = set_str(&cfg->region, optarg);
            break;
        case OPT_MAXSB:
            if ((r = parse_uint("--max-sandboxes", optarg, 1, 100000, &v)) == 0)
                cfg->max_sandboxes = (unsigned)v;
            break;
        case OPT_MAXTO:
            if ((r = parse_uint("--max-timeout", optarg, 1, 365u * 86400u, &v)) == 0)
                cfg->max_timeout_s = (unsigned)v;
            break;
        case OPT_DEFTO:
            if ((r = parse_uint("--default-timeout", optarg, 1, 365u * 86400u, &v)) == 0)
                cfg->default_timeout_s = (unsigned)v;
            break;
        case OPT_MAXMEM:
            if ((r = parse_uint("--max-memory-mb", optarg, 64, 1u << 24, &v)) == 0)
                cfg->max_memory_mb = (unsigned)v;
            break;
        case OPT_MAXUP:
            if ((r = parse_uint("--max-upload-mb", optarg, 1, 1u << 24, &v)) == 0)
                cfg->max_upload_bytes = v << 20;
            break;
        case OPT_RATE: r = parse_rate("--rate-limit", optarg, 1e6, &cfg->rate_limit); break;
        case OPT_BURST:
            if ((r = parse_uint("--rate-burst", optarg, 1, 1000000, &v)) == 0)
                cfg->rate_burst = (unsigned)v;
            break;
        case OPT_MAXCONC:
            if ((r = parse_uint("--max-concurrent-requests", optarg, 0, 100000, &v)) == 0)
                cfg->max_concurrent = (unsigned)v;
            break;
        case OPT_MAXSBKEY:
            if ((r = parse_uint("--max-sandboxes-per-key", optarg, 0, 100000, &v)) == 0)
                cfg->max_sandboxes_per_key = (unsigned)v;
            break;
        case OPT_ADMINUNL: cfg->admin_unlimited = true; break;
        case OPT_AFRATE: r = parse_rate("--auth-fail-rate", optarg, 1e6, &cfg->auth_fail_rate); break;
        case OPT_AFBURST:
            if ((r = parse_uint("--auth-fail-burst", optarg, 1, 1000000, &v)) == 0)
                cfg->auth_fail_burst = (unsigned)v;
            break;
        case OPT_POOLSIZE:
            if ((r = parse_uint("--pool-size", optarg, 0, 1000, &v)) == 0)
                cfg->pool_size = (unsigned)v;
            break;
        case OPT_POOLMAX:
            if ((r = parse_uint("--pool-max", optarg, 0, 1000, &v)) == 0)
                cfg->pool_max = (unsigned)v;
            break;
        case OPT_ZYGOTE: r = set_str(&cfg->zygote_path, optarg); break;
        case OPT_WARMUP: r = set_str(&cfg->warmup, optarg); break;
        case OPT_NOZYGOTE: cfg->no_zygote = true; break;
        case OPT_FAVORDYN: cfg->cgroup_favordynmods = true; break;
        case OPT_INITSTATE: cfg->init_state = true; break;
        case OPT_CHECKINT: cfg->check_integrity = true; break;
        case OPT_AUDITROWS:
            if ((r = parse_uint("--audit-max-rows", optarg, 0, UINT64_C(1) << 40, &v)) == 0)
                cfg->audit_max_rows = v;
            break;
        case OPT_AUDITAGE:
            if ((r = parse_uint("--audit-max-age", optarg, 0, UINT64_C(100) * 365 * 86400, &v)) == 0)
                cfg->audit_max_age_s = v;
            break;
        case OPT_AGENT: r = set_str(&cfg->agent_path, optarg); break;
        case OPT_RUNNER: r = set_str(&cfg->runner_path, optarg); break;
        case OPT_SCOPE: r = set_str(&cfg->scope, optarg); break;
        case OPT_LOGLEVEL:
            if (strcmp(optarg, "debug") == 0)
                cfg->log_level = LOG_LVL_DEBUG;
            else if (strcmp(optarg, "info") == 0)
                cfg->log_level = LOG_LVL_INFO;
            else if (strcmp(optarg, "warn") == 0)
                cfg->log_level = LOG_LVL_WARN;
            else {
                fprintf(stderr, "airlockd: --log-level: expected debug, info or warn, got '%s'\n", optarg);
                r = -EINVAL;
            }
            break;
        case OPT_HELP:
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -EINVAL;
        }
        if (r < 0)
            return r;
    }
    if (optind < argc) {
        fprintf(stderr, "airlockd: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (cfg->default_timeout_s > cfg->max_timeout_s) {
        fprintf(stderr, "airlockd: --default-timeout %u exceeds --max-timeout %u\n", cfg->default_timeout_s,
                cfg->max_timeout_s);
        return -EINVAL;
    }
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
    return 0;
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
    free(cfg->scope);
    free(cfg->template_cache);
}
