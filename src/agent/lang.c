/* lang.c - which program is the persistent runner of each RUN_CODE language.
 *
 * repl.c runs every runner the same way (pipes on fds 0-4, the drop
 * sequence of proc.c, timeouts, caps, restarts); only the command line
 * differs, and that is here:
 *
 *   python      python3 -B /opt/airlock/airlock_runner.py  (or forked by the
 *               zygote: a pre-imported CPython, zygote_client.c)
 *   r           Rscript --vanilla /opt/airlock/airlock_runner.R
 *   javascript  node --expose-internals /opt/airlock/airlock_runner.mjs
 *
 * The R and JavaScript runners sit next to the Python one (the daemon
 * copies all three into /opt/airlock, src/jail/plan.c). They are exec'd, not
 * forked from a warm host process: an embedded libR or libnode zygote would
 * be a new host-root process per language for a start cost that docs/
 * benchmarks.md measures (R ~0.2-0.4 s, node ~0.05-0.15 s). Instead a
 * runner can start with the agent (--warm r,javascript: the first cell
 * finds it ready, at its memory per sandbox) or at its language's first call.
 *
 * Each language is a code context's (context.c): the python default is
 * slot 0, an R or JavaScript one ("default-r", "default-javascript") is
 * made at that language's first call without a context, or with the agent
 * for --warm.
 *
 * A template without the interpreter (no /usr/bin/Rscript in its root) gets
 * a clear error at the first call rather than an exec failure. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "util.h"

struct lang_def {
    const char *name, *label;
    const char *interpreter; /* NULL: --python */
    const char *flags[3];    /* between the interpreter and the runner file */
    const char *runner;      /* next to --runner */
    const char *package;     /* the Debian package a template needs, for the error */
};

static const struct lang_def langs[] = {
    {"python", "Python", NULL, {"-B"}, NULL, "python3"},
    {"r", "R", "/usr/bin/Rscript", {"--vanilla"}, "airlock_runner.R", "r-base-core and r-cran-jsonlite"},
    /* --expose-internals: the REPL's top-level await rewrite (the runner's header) */
    {"javascript", "JavaScript", "/usr/bin/node", {"--expose-internals"}, "airlock_runner.mjs", "nodejs"},
};

static const struct lang_def *lang_find(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "js") == 0)
        name = "javascript";
    for (size_t i = 0; i < ARRAY_SIZE(langs); i++)
        if (strcmp(name, langs[i].name) == 0)
            return &langs[i];
    return NULL;
}

const char *lang_canonical(const char *name)
{
    const struct lang_def *d = lang_find(name);
    return d ? d->name : NULL;
}

const char *lang_label(const char *name)
{
    const struct lang_def *d = lang_find(name);
    return d ? d->label : name;
}

const char *lang_list(void)
{
    return "python, bash, r, javascript";
}

int lang_parse_warm(const char *list, unsigned *out)
{
    char buf[128];
    if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
        return -EINVAL;
    *out = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const struct lang_def *d = lang_find(t);
        if (!d)
            return -EINVAL;
        *out |= 1u << (d - langs);
    }
    return 0;
}

const char *lang_warm_next(const struct agent *a, size_t *i)
{
    /* Python's default context always starts with the agent (context.c) */
    for (; *i < ARRAY_SIZE(langs); (*i)++)
        if (*i > 0 && (a->warm_langs & (1u << *i)))
            return langs[(*i)++].name;
    return NULL;
}

bool lang_needs_fd_reopen(const char *name)
{
    const struct lang_def *d = lang_find(name);
    return d && d->interpreter != NULL;
}

int lang_runner_argv(const struct agent *a, const char *name, char *argv[LANG_MAX_ARGV], char *path, size_t pathlen,
                     char *err, size_t errlen)
{
    const struct lang_def *d = lang_find(name);
    if (!d) {
        snprintf(err, errlen, "no runner for language %s", name);
        return -EINVAL;
    }
    size_t n = 0;
    argv[n++] = (char *)(d->interpreter ? d->interpreter : a->python_path);
    for (size_t i = 0; i < ARRAY_SIZE(d->flags) && d->flags[i]; i++)
        argv[n++] = (char *)d->flags[i];
    if (!d->runner) {
        argv[n++] = (char *)a->runner_path;
    } else {
        /* the directory of --runner, which holds all three */
        const char *slash = strrchr(a->runner_path, '/');
        int dirlen = slash ? (int)(slash - a->runner_path) : 1;
        const char *dir = slash ? a->runner_path : ".";
        int w = snprintf(path, pathlen, "%.*s/%s", dirlen, dir, d->runner);
        if (w < 0 || (size_t)w >= pathlen) {
            snprintf(err, errlen, "%s runner path too long", d->label);
            return -ENAMETOOLONG;
        }
        argv[n++] = path;
    }
    argv[n] = NULL;
    if (d->interpreter && access(d->interpreter, X_OK) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s is not available in this sandbox: %s: %s (a template needs %s)", d->label, d->interpreter,
                 strerror(e), d->package);
        return -ENOENT;
    }
    if (d->runner && access(path, R_OK) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s runner %s: %s", d->label, path, strerror(e));
        return -ENOENT;
    }
    return 0;
}
