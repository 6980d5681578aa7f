/* agent.h - internal interfaces of airlock-agent (PID 1 inside a sandbox).
 *
 * The agent is one single-threaded event loop (ev.c) over fds, timers
 * and child exits that their owners register with a callback:
 *   - the control stream to airlockd (ctl.c, framed, docs/protocol.md),
 *   - a signalfd for SIGCHLD (ev.c reaps every child and orphan there and
 *     hands a job's or the runner's exit to its owner),
 *   - each code context's REPL pipes and its call deadline (repl.c),
 *   - the pipes and deadlines of fresh bash / exec children (job.c),
 *   - pending file downloads (files.c, an idle hook: one chunk per turn, at
 *     most PROTO_GET_WINDOW unacknowledged bytes each: a stalled download
 *     waits for FILE_ACK without holding the loop).
 * All state lives in one `struct agent` passed around; there is no other
 * global mutable state.
 *
 * Who owns what. Calls go one way: main.c -> ctl.c -> context.c -> repl.c; ctl.c -> job.c,
 * files.c -> proc.c, stream.c, tree.c, pathpolicy.c, zygote_client.c; any
 * of them may call ev.c (registration) and wire.c (frames out), which call
 * none of them. No two files call each other.
 *   main.c     arguments, signals, Landlock, then ctl_start + repl_start + ev_run
 *   ctl.c      frames in: parse, dispatch to repl / job / files
 *   ev.c       the poll loop, timers, the child-exit registry (ev.h)
 *   wire.c     frames out: agent_send* (replies, output, LOG lines)
 *   proc.c     fork + the privilege drop sequence + execve of user code
 *   seccomp.c  the seccomp allow-list installed last before execve
 *   landlock.c the Landlock domain the agent puts itself (and so all user
 *              processes) in at start
 *   stream.c   forwarding a child's stdout/stderr as capped frames
 *   context.c  the code contexts (independent REPLs): CTX_* and RUN_CODE's context
 *   repl.c     one context's runner process and its RUN_CODE calls
 *   job.c      RUN_CODE language=bash and EXEC (fresh processes)
 *   tree.c     finding and killing what a timed-out call started (/proc)
 *   files.c    FILE_* requests: transfers, listings, deletes
 *   pathpolicy.c  which paths the file API accepts and how they are opened
 *              (its header comment is the whole policy, for a security review)
 */
#ifndef AIRLOCK_AGENT_H
#define AIRLOCK_AGENT_H

#include <jansson.h>
#include <poll.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ev.h"
#include "log.h"
#include "path.h"
#include "proto.h"

#define AGENT_NAME "airlock-agent 0.1.0"
#define AGENT_USER_UID 1000
#define AGENT_USER_GID 1000
#define AGENT_DEFAULT_TIMEOUT_MS 60000u
#define AGENT_MAX_TIMEOUT_MS (365ll * 86400 * 1000) /* the daemon's longest --max-timeout */
#define AGENT_DEFAULT_MAX_OUTPUT (10u * 1024u * 1024u)
#define AGENT_OUTPUT_FRAME (64u * 1024u) /* STDOUT/STDERR frames are at most this big */
#define AGENT_INTERRUPT_GRACE_MS 2000u   /* SIGINT -> SIGKILL delay for the REPL */
#define AGENT_MAX_JOBS 64                /* concurrent bash/exec children */
#define AGENT_MAX_FILE_OPS 64            /* concurrent uploads + downloads */
#define AGENT_MAX_FILE_WATCHES 16        /* concurrent FILE_WATCHes (one inotify fd each) */

/* ---- output forwarding (stream.c) ---------------------------------------- */

/* One stdout or stderr pipe of a child, forwarded as STDOUT/STDERR frames.
 * Past `max` bytes the data is still read (the child must never block on a
 * full pipe) but discarded, and `truncated` is set. */
struct outstream {
    int fd;           /* read end, O_NONBLOCK; -1 once closed */
    int watch;        /* its ev_watch handle, 0 if none */
    uint8_t type;     /* PROTO_STDOUT or PROTO_STDERR */
    size_t forwarded; /* bytes sent in frames for the current request */
    bool truncated;
};

struct agent;

void outstream_init(struct outstream *s, int fd, uint8_t type);
/* Register s with the loop: fn is called when it is readable. */
void outstream_watch(struct agent *a, struct outstream *s, ev_fd_fn *fn, void *ctx);
/* Start counting for a new request (the REPL's pipes outlive requests). */
void outstream_reset(struct outstream *s);
/* Read one chunk and forward it for req_id (0: discard). 1 if data was read,
 * 0 on EAGAIN, -EPIPE on EOF (fd closed), -errno on error (fd closed). */
int outstream_pump(struct agent *a, struct outstream *s, uint32_t req_id, size_t max);
/* Pump until EAGAIN or EOF: everything the child wrote so far is sent. */
void outstream_drain(struct agent *a, struct outstream *s, uint32_t req_id, size_t max);
void outstream_close(struct agent *a, struct outstream *s); /* unwatch, close */

/* ---- user processes (proc.c) --------------------------------------------- */

/* What to run and with which fds. The child gets stdin/stdout/stderr and the
 * extra fds at 3, 4, ...; every other fd is closed. */
/* What every user process gets, fixed once at agent start: the seccomp
 * programs (compiled at build time by seccomp_gen.c, so a spawn only loads
 * them: libseccomp needs ~3 ms for the allow-list) and the RLIMIT_DATA that
 * turns an allocation no sandbox could hold into a Python MemoryError
 * instead of an OOM kill of the whole REPL. */
struct spawn_policy {
    struct sock_fprog filter; /* the allow-list, loaded with FLAG_LOG */
    struct sock_fprog quiet;  /* loaded after it: routine refusals, unlogged */
    rlim_t data_limit; /* RLIM_INFINITY when the sandbox memory is unknown */
    rlim_t nproc_limit; /* 0: unset. A vm guest's pids cap (its uid 1000 is the sandbox) */
};

struct spawn_spec {
    const struct spawn_policy *policy;
    char *const *argv; /* argv[0] is searched in the PATH of envp if it has no '/' */
    char *const *envp;
    const char *cwd; /* chdir target; "/" if it does not exist */
    int stdin_fd, stdout_fd, stderr_fd;
    const int *extra_fds;
    int n_extra;
    bool subreaper; /* PR_SET_CHILD_SUBREAPER: orphans of its descendants stay in its tree */
    bool ctty;      /* stdin is a pty's slave: make it the session's controlling terminal */
    /* NULL: the process inherits its parent's Landlock domain (the agent's).
     * Else the root to build the same ruleset under, for a process that is
     * not the agent's descendant (the zygote's REPL, zygote/spawn.c). */
    const char *landlock_root;
};

/* Why a spawn failed: the child's message ("setresuid 1000: Operation not
 * permitted"), its errno, and whether it was the final execve (the program
 * was not found or not executable: the user's mistake, not the sandbox's). */
struct spawn_error {
    char msg[512];
    int err;
    bool at_exec;
};

/* Fork a user process: new session, fds, oom_score_adj 1000, rlimits, no
 * capabilities, uid/gid 1000, no_new_privs, seccomp, execve. On failure of
 * any step -errno is returned with *e filled in; the child is reaped. */
int proc_spawn(const struct spawn_spec *spec, pid_t *pid_out, struct spawn_error *e);

/* The same drop sequence without the execve, for a child that runs code
 * already in its memory (the zygote's REPL): everything proc_spawn's child
 * does up to and including seccomp. Fails through errfd + _exit(127) like
 * it; returns errfd's new number (just above the extra fds). */
int proc_child_confine(const struct spawn_spec *s, int errfd);
/* Such a child, confined: report {err 0, getpid()} and close errfd. */
void proc_child_ready(int errfd);
/* Report a failure through errfd (no exit; the zygote before it forks). */
void proc_report_failure(int errfd, int err, const char *msg);
/* Report "what: strerror(err)" and _exit(127) (the zygote's children). */
__attribute__((noreturn)) void proc_child_fail(int errfd, int err, const char *what);
/* The reader side for children that do not exec: wait up to timeout_ms for
 * a report. 0 with *pid_out (the pid as the child sees it), or -errno with
 * e filled (a child's failure, EOF, or -ETIMEDOUT). */
int proc_await_ready(int rd, int timeout_ms, pid_t *pid_out, struct spawn_error *e);

/* Build the user environment: the fixed base plus `extra` (a JSON object of
 * string values; NULL allowed). Returns a NULL-terminated malloc'd array
 * (free with strv_free), or NULL with err filled for a non-string value. */
char **proc_build_env(json_t *extra, char *err, size_t errlen);
void strv_free(char **v);
static inline void strv_freep(char ***v) { strv_free(*v); }
#define cleanup_strv __attribute__((cleanup(strv_freep)))

/* ---- process trees (tree.c) ---------------------------------------------- */

/* A point in time as /proc/PID/stat can be compared with: clock ticks since
 * boot and the pid namespace's last allocated pid (-1 if unknown). */
struct tree_mark {
    unsigned long long ticks;
    pid_t last_pid;
};

/* Cheap (a clock read and one pread of last_pid_fd, an open
 * /proc/sys/kernel/ns_last_pid or -1): taken at every call start. */
void tree_mark_now(struct tree_mark *m, int last_pid_fd);
/* SIGKILL every descendant of root (not root itself), in passes until none
 * is left; the caller has stopped root. Returns how many were killed. */
int tree_kill_descendants(pid_t root);
/* SIGKILL what a python call started: descendants of the runner that started
 * after `since` (through such processes only), and orphans adopted by the
 * agent that did (not job roots; with `ambiguous`, a job ended during the
 * call, only those in the runner's session). Killed children of the runner
 * are stored in direct[] (up to cap): the runner must reap them. */
int tree_kill_call(const struct agent *a, pid_t runner, const struct tree_mark *since, bool ambiguous, pid_t *direct,
                   size_t *ndirect, size_t direct_cap);

/* ---- seccomp (seccomp.c) -------------------------------------------------- */

/* Compile the user-code filter into prog (prog->filter is malloc'd). */
int seccomp_build_user_filter(struct sock_fprog *prog, char *err, size_t errlen);
/* The second filter: the same errno for the quiet rules (clone3), loaded
 * without FLAG_LOG after the main one, so those refusals are not logged. */
int seccomp_build_quiet_filter(struct sock_fprog *prog, char *err, size_t errlen);
/* The policy as a table: name, action, errno, reason (--seccomp-policy). */
void seccomp_print_policy(FILE *f);

/* ---- Landlock (landlock.c) ------------------------------------------------ */

/* Confine the calling process (the agent) and all its future children: read
 * everywhere, write only beneath ROOT/{tmp,data,home/user} and /dev/shm (and
 * device files, /proc/self), no signals or abstract unix sockets leaving the
 * domain. 0: enforced, msg says how; 1: Landlock unavailable, msg says why;
 * -errno: it is available but could not be applied, msg says what failed. */
/* scoped: also scope signals and abstract unix sockets to the domain. Off
 * when the REPL comes from the zygote: it lives in a sibling domain the
 * agent could not signal then (docs/security.md). */
int landlock_confine(const char *root, bool scoped, char *msg, size_t msglen);

/* ---- the REPLs: code contexts (repl.c runs one, context.c keeps the table) - */

#define REPL_MAX_REAP 512
/* Contexts per sandbox, the default one included. Each is a runner process
 * (a forked, warm interpreter: a few MiB of its own beside what it shares
 * with the zygote) counted in the sandbox's memory and pids; the cap keeps
 * one sandbox's table and the loop's (EV_MAX_*) bounded. docs/api.md. */
#define AGENT_MAX_CONTEXTS 8
#define REPL_ID_MAX 40
#define REPL_DEFAULT_ID "default"

struct repl {
    bool used;               /* a slot of a->repls[] in use (the default one always) */
    bool is_default;         /* a->repls[0]: today's REPL, never removed */
    char id[REPL_ID_MAX];    /* "default", or "ctx-" + 16 hex digits */
    char language[16];       /* "python", "r", "javascript" (lang.c) */
    char cwd[PATH_NORM_MAX]; /* where its runner starts, absolute */
    pid_t pid;               /* 0 when no runner is running */
    int cmd_fd;              /* agent -> runner commands (runner's fd 3) */
    int res_fd;              /* runner -> agent results (runner's fd 4), O_NONBLOCK */
    struct outstream out, err;
    int res_watch;           /* ev handles: res_fd, the call's deadline */
    int timer;
    uint64_t started_ms;     /* when the current runner was spawned */
    char start_error[600];   /* why the last start failed, for ERROR replies */
    bool restart_pending;    /* died while idle: start again on the next RUN_CODE */
    bool state_lost;         /* died while idle: the next call's RESULT says repl_restarted */

    uint8_t *rbuf;           /* partial result message from res_fd */
    size_t rlen, rcap;

    /* the call in progress; req_id 0 when idle */
    uint32_t req_id;
    size_t max_output;
    uint64_t call_start_ms;
    uint64_t deadline_ms;    /* timeout: send SIGINT */
    uint64_t kill_at_ms;     /* SIGINT ignored: SIGKILL the group (0: not armed) */
    uint64_t timeout_ms;
    bool timed_out;
    bool killed_by_agent;    /* we sent SIGKILL after the grace period */
    struct tree_mark call_mark; /* processes started after it belong to the call */
    unsigned long jobs_ended_at_start; /* a->jobs_ended when the call started: if
                                it grew, a job ended normally during the call,
                                and its leftovers and the call's orphans both
                                are ours */
    unsigned long calls_at_start; /* a->repl_calls after this call started: if it
                                grew, or another context was busy, orphans the
                                agent adopted may be another context's (tree.c) */
    bool others_busy;
    char restart_reason[200]; /* the runner asked to be restarted (threads that would not stop) */
    bool restart_now;         /* ... and its result is sent: restart it */
    char engine[16];          /* the runner's engine ("ipython", "basic"): logged when it changes */
    pid_t reap[REPL_MAX_REAP]; /* its children we killed; sent to it to reap */
    size_t nreap;
};

/* repl.c: one context's runner. */
void repl_init(struct repl *r);
/* Whether a context of this language can be created: python, r,
 * javascript (and "js"; lang.c). */
bool repl_language_known(const char *language);
int repl_start(struct agent *a, struct repl *r);
/* RUN_CODE for r (context.c found it). */
void repl_handle_run(struct agent *a, struct repl *r, uint32_t req_id, json_t *req);
/* Kill and reap r's runner now; a call in progress ends with an error named
 * `why` ("ContextRestarted"). The slot keeps its id; repl_start again or
 * repl_free it. */
void repl_stop(struct agent *a, struct repl *r, const char *why);
/* The runner's process group of whichever context runs req_id, else 0. */
pid_t repl_pgid_of(const struct agent *a, uint32_t req_id);
void repl_kill(struct agent *a); /* every context's runner group: SIGKILL */
void repl_free(struct agent *a, struct repl *r); /* close pipes, free buffers */

/* context.c: the table, CTX_* requests, and RUN_CODE's choice of context. */
void context_table_init(struct agent *a); /* the table with its default context, not started */
int context_init(struct agent *a);        /* ... and the default context's runner started */
void context_handle(struct agent *a, const struct proto_hdr *h, json_t *req);
void context_handle_run(struct agent *a, uint32_t req_id, json_t *req);
void context_free_all(struct agent *a);
/* The default contexts of the languages --warm names (lang.c), started now. */
void context_start_warm(struct agent *a);

/* ---- runner languages (lang.c) --------------------------------------------- */

#define LANG_MAX_ARGV 8
/* "python", "r", "javascript" for those or an alias ("js"); NULL otherwise. */
const char *lang_canonical(const char *name);
const char *lang_label(const char *name); /* "Python", "R", "JavaScript": for messages */
/* The languages RUN_CODE accepts, for an error message: "python, bash, r, javascript". */
const char *lang_list(void);
/* --warm r,javascript: a bit per language; -EINVAL for an unknown one. */
int lang_parse_warm(const char *list, unsigned *out);
/* The next language --warm named besides python, from index *i on (start at
 * 0), or NULL at the end. */
const char *lang_warm_next(const struct agent *a, size_t *i);
/* Whether the runner reopens its fds 3 and 4 (R, JavaScript: no
 * F_DUPFD_CLOEXEC of their own), so it must own those pipe ends. */
bool lang_needs_fd_reopen(const char *name);
/* The runner's argv (NULL-terminated; its runner file's path written to
 * path) for a language, or -ENOENT with err saying which interpreter this
 * sandbox's root lacks. */
int lang_runner_argv(const struct agent *a, const char *name, char *argv[LANG_MAX_ARGV], char *path, size_t pathlen,
                     char *err, size_t errlen);

/* proc.c: a working directory from the API (relative to /home/user; NULL or
 * "" is /home/user), checked to be an existing directory. out holds
 * PATH_NORM_MAX bytes; err says what is wrong. */
int proc_resolve_cwd(json_t *jcwd, char *out, char *err, size_t errlen);

/* ---- the zygote (zygote_client.c) ---------------------------------------- */

/* Have airlock-zygote fork the REPL with fds {stdin, stdout, stderr, cmd,
 * res} (the runner's 0, 1, 2, 3, 4). 0 and the REPL's pid (our child once
 * it is confined), or -errno: no zygote, or it failed (logged once, and the
 * zygote is not asked again: the caller execs the runner). */
int zygote_spawn(struct agent *a, const int fds[5], pid_t *pid_out);
void zygote_disable(struct agent *a, const char *why);

/* ---- bash / exec jobs (job.c) --------------------------------------------- */

struct job {
    struct job *next;
    uint32_t req_id;
    pid_t pid;        /* process group id too (the child calls setsid) */
    bool exited;
    int wstatus;
    struct outstream out, err;
    int stdin_fd;     /* write end while stdin is pending, else -1 */
    int stdin_watch;  /* ev handles of stdin_fd and the deadline */
    int timer;
    char *stdin_buf;
    size_t stdin_len, stdin_off;
    bool stdin_open;  /* EXEC "stdin_open": more comes in STDIN frames */
    bool stdin_eof;   /* ... until one with END: close once written */
    size_t max_output;
    uint64_t start_ms, deadline_ms;
    uint64_t timeout_ms;
    bool timed_out;
    bool pty;         /* out.fd is a pty's master (stdin writes to a dup of it) */
};

void job_handle_run_bash(struct agent *a, uint32_t req_id, json_t *req);
void job_handle_exec(struct agent *a, uint32_t req_id, json_t *req);
/* The process group of the running job of req_id, else 0. */
pid_t job_pgid_of(struct agent *a, uint32_t req_id);
/* A STDIN frame (proto.h) for the job of its req_id. */
void job_stdin_frame(struct agent *a, const struct proto_hdr *h, const uint8_t *payload);
void job_kill_all(struct agent *a);
/* PTY_RESIZE: {"target": req_id, "rows", "cols"} -> OK, or ERROR if that
 * request is not a running pty job. */
void job_handle_resize(struct agent *a, uint32_t req_id, json_t *req);

/* ---- files (files.c) ------------------------------------------------------ */

struct file_op; /* an upload in progress or a download being streamed */

/* An upload's temporary file in the target directory, renamed into place
 * at its end: not a file yet, so neither listed nor reported by a watch
 * (which sees the rename as the file's creation). */
#define FILES_TMP_PREFIX ".airlock-put-"

void files_handle(struct agent *a, const struct proto_hdr *h, json_t *req);
/* FILE_DATA, ERROR or FILE_ACK from the daemon for a transfer in progress:
 * upload data or abort, download acknowledgement or cancel. Frames for
 * unknown requests are dropped. */
void files_handle_peer_frame(struct agent *a, const struct proto_hdr *h, const uint8_t *payload);
/* Register the download pump with the loop (an idle hook). */
int files_init(struct agent *a);
void files_free_all(struct agent *a);

/* ---- directory watches (watch.c) --------------------------------------------- */

struct file_watch;

/* FILE_WATCH: OK (no END), then FILE_EVENT frames until the directory goes
 * or the daemon cancels. */
void watch_handle(struct agent *a, const struct proto_hdr *h, json_t *req);
/* An ERROR from the daemon for a watch cancels it; true if h was a watch's. */
bool watch_handle_peer_frame(struct agent *a, const struct proto_hdr *h);
void watch_free_all(struct agent *a);

/* ---- the agent ------------------------------------------------------------- */

_Static_assert(EV_MAX_WATCHES >= 8 + 3 * AGENT_MAX_JOBS + 3 * AGENT_MAX_CONTEXTS + AGENT_MAX_FILE_WATCHES,
               "every job's and context's three pipes and every directory watch fit the watch table");
_Static_assert(EV_MAX_TIMERS >= 8 + AGENT_MAX_JOBS + AGENT_MAX_CONTEXTS &&
                   EV_MAX_CHILDREN >= 8 + AGENT_MAX_JOBS + AGENT_MAX_CONTEXTS,
               "every job and context fits the loop");

#define AGENT_OOM_MARKS 16
struct oom_mark {
    uint32_t req_id; /* 0: free */
    uint64_t oom_kills;
};

struct agent {
    int ctl_fd;               /* control stream to airlockd (blocking) */
    int sig_fd;               /* signalfd for SIGCHLD */
    int root_fd;              /* O_PATH of --root: pathpolicy.c resolves inside it */
    const char *root_path;
    char *root_real;          /* realpath of --root: strips /proc/self/fd links back to sandbox paths */
    const char *runner_path;
    const char *python_path;
    int zygote_fd;            /* --zygote-fd: SOCK_SEQPACKET to airlock-zygote, -1 if none (zygote_client.c) */
    uint64_t memory_limit;    /* --memory-limit: the sandbox's memory, 0 if unknown */
    int meminfo_fd;           /* --meminfo-fds: the file over /proc/meminfo, -1 if none (meminfo.c) */
    int memcg_usage_fd, memcg_stat_fd; /* the sandbox cgroup's usage and memory.stat, -1 if none */
    int meminfo_timer;        /* refresh while calls run; 0 if not armed */
    bool meminfo_warned;
    uint64_t pids_limit;      /* a guest's processes+threads of user code (guest.c), 0: the cgroup's */
    int last_pid_fd;          /* /proc/sys/kernel/ns_last_pid, or -1 (tree.c) */
    struct spawn_policy policy;
    bool is_pid1;
    bool guest;               /* the vm backend's /init (guest.c) */
    struct oom_mark oom_marks[AGENT_OOM_MARKS]; /* oomwatch.c: guest OOM count at each call's start */
    unsigned oom_next;
    bool quit;                /* the loop stops at the end of this turn */
    int exit_code;

    struct repl repls[AGENT_MAX_CONTEXTS]; /* [0] is the default context (context.c) */
    unsigned warm_langs;      /* --warm: bit per language (lang.c) whose default context starts with the agent */
    unsigned long repl_calls;             /* python calls started in any context */
    struct job *jobs;
    unsigned long jobs_ended; /* jobs whose root exited by itself (not a timeout) */
    struct file_op *file_ops;
    struct file_watch *file_watches;

    struct ev ev;
};

/* ---- control stream in (ctl.c) ---------------------------------------------- */

/* Watch the control stream (the first watch: served first every turn) and
 * register the file transfers' pump. Then ev_run(a) serves it. */
int ctl_start(struct agent *a);

/* ---- frames out (wire.c) ------------------------------------------------------ */

/* log.c sink: every log line also goes to the daemon as a LOG frame. */
void agent_log_sink(void *ctx, enum log_level lvl, const char *line);

/* Replies. A failure to write to the control stream means the daemon is
 * gone: the loop is told to quit (a->quit) and the caller carries on. */
void agent_send(struct agent *a, uint8_t type, uint16_t flags, uint32_t req_id, const void *buf, size_t len);
void agent_send_json(struct agent *a, uint8_t type, uint16_t flags, uint32_t req_id, json_t *obj);
void agent_send_ok(struct agent *a, uint32_t req_id, json_t *obj); /* steals obj, END */
void agent_send_error(struct agent *a, uint32_t req_id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ERROR "op path: strerror(err)" with the protocol code for err (ENOENT ->
 * not_found, ELOOP/EXDEV -> path_escape, ...). */
void agent_send_errno(struct agent *a, uint32_t req_id, int err, const char *op, const char *path);
/* RESULT frame; steals obj. Shrinks "results" if the frame would be too big. */
void agent_send_result(struct agent *a, uint32_t req_id, json_t *obj);
/* Parse {timeout_ms, max_output} with defaults; -EINVAL with err set on bad types. */
int agent_parse_limits(json_t *req, uint64_t *timeout_ms, size_t *max_output, char *err, size_t errlen);

/* guest.c: the vm backend's /init. Builds the sandbox root in guest RAM and
 * sets a->ctl_fd to the virtio serial port; 0 or -errno (logged to the
 * kernel log). guest_poweroff never returns. */
int guest_boot(struct agent *a);
/* GUEST_SYNC after a snapshot restore: host entropy into the guest's pool,
 * the CRNG reseeded, the clock set. Replies OK or ERROR. */
void guest_sync(struct agent *a, uint32_t req_id, json_t *req);
void guest_poweroff(void) __attribute__((noreturn));
/* meminfo.c: rewrite /proc/meminfo from the cgroup (jail sandboxes only);
 * at each call start, then every 250 ms while calls run. */
void meminfo_refresh(struct agent *a);
void meminfo_call_started(struct agent *a);
/* oomwatch.c: a guest's calls that its OOM killer hit ("oom_killed" in RESULT) */
void oomwatch_call_started(struct agent *a, uint32_t req_id);
void oomwatch_result(struct agent *a, uint32_t req_id, json_t *result);

#endif
