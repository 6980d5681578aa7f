/* operr.h - the error of an operation below the API layer.
 *
 * Functions under src/daemon/api_*.c return 0 or -errno and, when the caller
 * needs more than an errno (what failed, and for which object), fill a
 * struct op_error: a code named for what happened (never for HTTP) and a
 * message naming the failed operation. Only the API layer turns it into an
 * HTTP status and {"error": {"code", "message"}} (api_error_from_op,
 * api_errors.c), and the code that decides what to do with a failure logs it
 * once. */
#ifndef AIRLOCK_OPERR_H
#define AIRLOCK_OPERR_H

#include <stddef.h>

#define OP_ERR_MSG_MAX 512
#define OP_ERR_AGENT_CODE_MAX 32

enum err_code {
    ERR_NONE = 0,
    ERR_INTERNAL,         /* a step that should not fail did (a syscall, the store, memory) */
    ERR_NOT_FOUND,        /* no such sandbox or build (or not the caller's) */
    ERR_EXPIRED,          /* the sandbox outlived its lifetime */
    ERR_SHUTTING_DOWN,    /* the daemon is stopping: no new work */
    ERR_AGENT_GONE,       /* the sandbox's agent connection is closed */
    ERR_AGENT_TIMEOUT,    /* the agent did not answer in time */
    ERR_TOO_LARGE,        /* a request the agent protocol cannot carry */
    ERR_AGENT,            /* the agent refused: its own code in agent_code */
    ERR_QUOTA,            /* --max-sandboxes reached */
    ERR_KEY_QUOTA,        /* --max-sandboxes-per-key reached */
    ERR_AUDIT,            /* the state record / audit event cannot be written */
    ERR_WARMUP,           /* a template's warm-up code raised */
    ERR_NO_TEMPLATE,      /* no template of that name */
    ERR_TEMPLATE_CORRUPT, /* a template's tree no longer matches its hash */
    ERR_TEMPLATE_IN_USE,  /* a template still has live sandboxes */
    ERR_INVALID_SPEC,     /* a template spec that does not parse */
    ERR_BUILDS_OFF,       /* template builds are disabled in this daemon */
    ERR_BUILD_BUSY,       /* the same template is already being built */
    ERR_TOO_MANY_BUILDS,  /* the build queue is full */
    ERR_PAUSED,           /* the sandbox is paused: resume it first */
    ERR_BUSY,             /* a pause refused: a call is still running in the sandbox */
    ERR_NO_PAUSE,         /* the sandbox's backend cannot pause */
    ERR_NOT_FAMILY,       /* diff / merge_into of two sandboxes not of one fork family */
    ERR_FORK_FAILED,      /* a fork's children could not be made (the parent is unharmed) */
};

struct op_error {
    enum err_code code; /* ERR_NONE: not set */
    char agent_code[OP_ERR_AGENT_CODE_MAX]; /* ERR_AGENT: the agent's code, verbatim */
    char msg[OP_ERR_MSG_MAX];
};

/* Fill e (if non-NULL) and return ret, so callers can write
 * `return op_error_set(e, -ENOENT, ERR_NOT_FOUND, "no sandbox %s", id)`. */
int op_error_set(struct op_error *e, int ret, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill e from an agent ERROR payload {"code","message"} (which may be junk:
 * the agent is only partly trusted) as ERR_AGENT. Returns -EREMOTEIO. */
int op_error_from_agent(struct op_error *e, const char *payload, size_t len);

/* ERR_AUDIT: `what` was refused (not done) because its state record and
 * audit event could not be written (r: -ENOSPC, the state disk is full;
 * else a database error). Returns r. */
int op_error_audit(struct op_error *e, int r, const char *what);

#endif
