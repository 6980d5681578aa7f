/* job.c - RUN_CODE language=bash and EXEC: a fresh process per request.
 *
 * Each job is a user process (proc.c) in its own process group with three
 * pipes. Its stdin, if the request carries one, is written through the loop
 * without blocking; its stdout/stderr are forwarded as frames (stream.c).
 * The job ends when its main process exits: what it wrote is drained and a
 * RESULT sent. Background processes it started are left running (a server
 * started with `cmd &` keeps working) and are reaped by the agent later.
 *
 * A job that times out is different: everything it started is stopped,
 * also what left its process group (setsid) or its parent (double fork).
 * The root is a child subreaper (proc.c), so such orphans stay below it;
 * on timeout the root is stopped (SIGSTOP: it cannot start more), every
 * descendant is SIGKILLed (tree.c walks /proc, on timeout only), then the
 * group and the root. A root that cleared its own subreaper flag can let a
 * process escape that clean-up; the sandbox's cgroup still bounds it and
 * destroy still ends it (tree.c).
 *
 * bash code up to 96 KiB runs as `bash -c CODE` (messages then read
 * "bash: line 3: ..."); longer code travels in a memfd passed as fd 3 and run
 * as /proc/self/fd/3, since the kernel caps one argv string at 128 KiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "path.h"
#include "util.h"

#define EXEC_MAX_ARGS 4096
/* stdin a job has not read yet, at most: more is dropped (and logged) */
#define STDIN_MAX_PENDING (4u << 20)

static struct job *job_find_req(struct agent *a, uint32_t req_id)
{
    for (struct job *j = a->jobs; j; j = j->next)
        if (j->req_id == req_id)
            return j;
    return NULL;
}

pid_t job_pgid_of(struct agent *a, uint32_t req_id)
{
    struct job *j = job_find_req(a, req_id);
    return j && !j->exited ? j->pid : 0;
}

static int job_count(const struct agent *a)
{
    int n = 0;
    for (const struct job *j = a->jobs; j; j = j->next)
        n++;
    return n;
}

static void job_close_stdin(struct agent *a, struct job *j)
{
    ev_unwatch(a, j->stdin_watch);
    j->stdin_watch = 0;
    if (j->stdin_fd >= 0)
        close(j->stdin_fd);
    j->stdin_fd = -1;
    free(j->stdin_buf);
    j->stdin_buf = NULL;
}

static void job_free(struct agent *a, struct job *j)
{
    for (struct job **pp = &a->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    if (!j->exited)
        ev_child_cancel(a, j->pid); /* killed or abandoned: reaped as an orphan */
    ev_timer_cancel(a, j->timer);
    outstream_close(a, &j->out);
    outstream_close(a, &j->err);
    job_close_stdin(a, j);
    free(j);
}

/* Stop the root, kill every descendant, then the group and the root. The
 * killed processes are reaped by the loop: the root's zombie children are
 * re-parented to us when it dies. */
static void job_kill_tree(struct job *j)
{
    if (kill(j->pid, SIGSTOP) < 0 && errno != ESRCH)
        log_warn("kill SIGSTOP %d: %s", (int)j->pid, strerror(errno));
    int n = tree_kill_descendants(j->pid);
    if (n > 0)
        log_debug("request %u: killed %d processes below %d", j->req_id, n, (int)j->pid);
    if (kill(-j->pid, SIGKILL) < 0 && errno != ESRCH)
        log_warn("kill SIGKILL -%d: %s", (int)j->pid, strerror(errno));
    if (kill(j->pid, SIGKILL) < 0 && errno != ESRCH) /* it may have left its group */
        log_warn("kill SIGKILL %d: %s", (int)j->pid, strerror(errno));
}

void job_kill_all(struct agent *a)
{
    while (a->jobs) {
        struct job *j = a->jobs;
        if (!j->exited)
            job_kill_tree(j);
        job_free(a, j);
    }
}

/* ---- finishing ------------------------------------------------------------- */

static void job_finish(struct agent *a, struct job *j)
{
    outstream_drain(a, &j->out, j->req_id, j->max_output);
    outstream_drain(a, &j->err, j->req_id, j->max_output);

    int st = j->wstatus;
    int code;
    json_t *killed = json_null();
    json_t *error = json_null();
    char msg[160];
    if (j->timed_out) {
        code = 124; /* what timeout(1) reports */
        snprintf(msg, sizeof(msg), "execution exceeded %g s and was killed", (double)j->timeout_ms / 1000.0);
        error = json_pack("{s:s, s:s, s:s}", "name", "TimeoutError", "value", msg, "traceback", "");
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        code = 128 + sig;
        killed = json_integer(sig);
        snprintf(msg, sizeof(msg), "the process was killed by signal %d", sig);
        error = json_pack("{s:s, s:s, s:s}", "name", "ProcessKilled", "value", msg, "traceback", "");
    } else {
        code = WEXITSTATUS(st);
    }
    json_t *res = json_pack("{s:i, s:o, s:[], s:I, s:b, s:b, s:b, s:o, s:b}", "exit_code", code, "error", error, "results",
                            "duration_ms", (json_int_t)(now_mono_ms() - j->start_ms), "stdout_truncated", j->out.truncated,
                            "stderr_truncated", j->err.truncated, "timed_out", j->timed_out, "killed_signal", killed,
                            "repl_restarted", false);
    agent_send_result(a, j->req_id, res);
    job_free(a, j);
}

/* The root exited (reaped by the loop). */
static void job_on_exit(struct agent *a, void *ctx, pid_t pid, int wstatus)
{
    (void)pid;
    struct job *j = ctx;
    /* what it left running is ours now, as are the orphans of a python call
     * in progress: the REPL's timeout must tell them apart (tree.c) */
    if (!j->timed_out)
        a->jobs_ended++;
    j->exited = true;
    j->wstatus = wstatus;
    job_finish(a, j);
}

static void job_on_output(struct agent *a, struct job *j, struct outstream *s)
{
    (void)outstream_pump(a, s, j->req_id, j->max_output);
    if (j->exited)
        job_finish(a, j);
}

static void job_on_stdout(struct agent *a, void *ctx, short revents)
{
    (void)revents;
    struct job *j = ctx;
    job_on_output(a, j, &j->out);
}

static void job_on_stderr(struct agent *a, void *ctx, short revents)
{
    (void)revents;
    struct job *j = ctx;
    job_on_output(a, j, &j->err);
}

static void job_on_deadline(struct agent *a, void *ctx)
{
    (void)a;
    struct job *j = ctx;
    j->timer = 0;
    if (!j->exited && !j->timed_out) {
        j->timed_out = true;
        /* RESULT follows from job_on_exit once the kernel reports it */
        job_kill_tree(j);
    }
}

static void job_on_stdin_writable(struct agent *a, void *ctx, short revents)
{
    (void)revents;
    struct job *j = ctx;
    while (j->stdin_off < j->stdin_len) {
        ssize_t n = write(j->stdin_fd, j->stdin_buf + j->stdin_off, j->stdin_len - j->stdin_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            break; /* EPIPE: the child closed its stdin; it does not want the rest */
        }
        j->stdin_off += (size_t)n;
    }
    if (j->stdin_off >= j->stdin_len && j->stdin_open && !j->stdin_eof) {
        /* all written; the pipe stays open for the next STDIN frame */
        ev_unwatch(a, j->stdin_watch);
        j->stdin_watch = 0;
        free(j->stdin_buf);
        j->stdin_buf = NULL;
        j->stdin_len = j->stdin_off = 0;
        return;
    }
    job_close_stdin(a, j);
}

void job_stdin_frame(struct agent *a, const struct proto_hdr *h, const uint8_t *payload)
{
    struct job *j = job_find_req(a, h->req_id);
    if (!j || !j->stdin_open || j->stdin_fd < 0 || j->stdin_eof) {
        log_debug("dropping STDIN for request %u: no open stdin", h->req_id);
        return;
    }
    if (h->len > 0) {
        size_t pending = j->stdin_len - j->stdin_off;
        if (pending + h->len > STDIN_MAX_PENDING) {
            log_warn("request %u: %zu bytes of stdin unread; %u more dropped", h->req_id, pending, h->len);
            return;
        }
        char *buf = malloc(pending + h->len);
        if (!buf) {
            log_warn("request %u: out of memory for stdin; %u bytes dropped", h->req_id, h->len);
            return;
        }
        if (pending)
            memcpy(buf, j->stdin_buf + j->stdin_off, pending);
        memcpy(buf + pending, payload, h->len);
        free(j->stdin_buf);
        j->stdin_buf = buf;
        j->stdin_len = pending + h->len;
        j->stdin_off = 0;
    }
    if ((h->flags & PROTO_F_END) && j->pty) {
        /* a terminal has no end of input to close: the line discipline
         * reads ^D as one (at the start of a line), as a user types it */
        static const char eot = 0x04;
        char *buf = malloc(j->stdin_len - j->stdin_off + 1);
        if (buf) {
            memcpy(buf, j->stdin_buf + j->stdin_off, j->stdin_len - j->stdin_off);
            buf[j->stdin_len - j->stdin_off] = eot;
            j->stdin_len = j->stdin_len - j->stdin_off + 1;
            j->stdin_off = 0;
            free(j->stdin_buf);
            j->stdin_buf = buf;
        }
    } else if (h->flags & PROTO_F_END) {
        j->stdin_eof = true;
    }
    if (!j->stdin_watch) {
        j->stdin_watch = ev_watch(a, j->stdin_fd, POLLOUT, job_on_stdin_writable, j);
        if (j->stdin_watch < 0) {
            j->stdin_watch = 0;
            job_close_stdin(a, j);
        }
    }
}

/* ---- starting -------------------------------------------------------------- */

struct job_request {
    char *const *argv;
    const char *cwd;
    const char *stdin_data;
    size_t stdin_len;
    bool stdin_open; /* keep the pipe open for STDIN frames */
    bool notify_start; /* send OK {"pid"} (no END) once it runs: a background process's handle */
    bool pty;          /* a terminal instead of pipes, rows x cols */
    unsigned short rows, cols;
    int extra_fd; /* -1 or the bash memfd, placed at fd 3 */
};

static void send_exec_failure(struct agent *a, uint32_t req_id, const struct spawn_error *se)
{
    /* the program could not be started: like a shell, say so on stderr and
     * exit 127 (not found) or 126 (not executable) */
    char line[600];
    int n = snprintf(line, sizeof(line), "airlock: %s\n", se->msg);
    agent_send(a, PROTO_STDERR, 0, req_id, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : strlen(line));
    int code = se->err == -ENOENT || se->err == -ENOTDIR ? 127 : 126;
    json_t *res = json_pack("{s:i, s:{s:s, s:s, s:s}, s:[], s:i, s:b, s:b, s:b, s:n, s:b}", "exit_code", code, "error", "name",
                            "ExecError", "value", se->msg, "traceback", "", "results", "duration_ms", 0, "stdout_truncated",
                            false, "stderr_truncated", false, "timed_out", false, "killed_signal", "repl_restarted", false);
    agent_send_result(a, req_id, res);
}

/* Its exit, pipes and deadline, to the loop. */
static int job_register(struct agent *a, struct job *j)
{
    int r = ev_child_add(a, j->pid, job_on_exit, j);
    if (r < 0)
        return r;
    j->timer = ev_timer_add(a, j->deadline_ms, job_on_deadline, j);
    if (j->timer < 0) {
        j->timer = 0;
        return -ENOSPC;
    }
    outstream_watch(a, &j->out, job_on_stdout, j);
    outstream_watch(a, &j->err, job_on_stderr, j);
    j->stdin_watch = ev_watch(a, j->stdin_fd, POLLOUT, job_on_stdin_writable, j);
    if (!j->out.watch || !j->err.watch || j->stdin_watch < 0) {
        j->stdin_watch = 0;
        return -ENOSPC;
    }
    return 0;
}

/* A pty pair from the sandbox's own devpts instance (/dev/ptmx -> pts/ptmx,
 * mounted newinstance in every sandbox root: src/jail/mnt.c, guest.c):
 * fds[0] the slave, fds[1] the master (O_NONBLOCK), the window rows x cols.
 * The slave is handed to uid 1000 so that programs which reopen their tty
 * by name (tty, ssh-askpass, sudo's prompts) can. 0 or -errno, err set. */
static int open_pty(unsigned short rows, unsigned short cols, int fds[2], char *err, size_t errlen)
{
    cleanup_fd int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0) {
        int e = errno;
        snprintf(err, errlen, "open /dev/ptmx: %s", strerror(e));
        return -e;
    }
    if (unlockpt(m) < 0) {
        int e = errno;
        snprintf(err, errlen, "unlockpt: %s", strerror(e));
        return -e;
    }
    /* TIOCGPTPEER: the slave of THIS master, not whatever a path names */
    cleanup_fd int sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) {
        int e = errno;
        snprintf(err, errlen, "ioctl TIOCGPTPEER: %s", strerror(e));
        return -e;
    }
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    if (ioctl(m, TIOCSWINSZ, &ws) < 0) {
        int e = errno;
        snprintf(err, errlen, "ioctl TIOCSWINSZ: %s", strerror(e));
        return -e;
    }
    if (fchown(sl, AGENT_USER_UID, AGENT_USER_GID) < 0)
        log_debug("fchown pty slave to %d: %s (the process still has it at 0..2)", AGENT_USER_UID, strerror(errno));
    fds[0] = steal_fd(&sl);
    fds[1] = steal_fd(&m);
    return 0;
}

void job_handle_resize(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *t = json_object_get(req, "target");
    json_t *r = json_object_get(req, "rows"), *c = json_object_get(req, "cols");
    if (!json_is_integer(t) || !json_is_integer(r) || !json_is_integer(c) || json_integer_value(r) < 1 ||
        json_integer_value(r) > 1000 || json_integer_value(c) < 1 || json_integer_value(c) > 1000) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "target must be a request id, rows and cols 1..1000");
        return;
    }
    struct job *j = job_find_req(a, (uint32_t)json_integer_value(t));
    if (!j || j->exited || !j->pty || j->out.fd < 0) {
        agent_send_error(a, req_id, PROTO_ERR_NOT_FOUND, "no running pty command %u", (unsigned)json_integer_value(t));
        return;
    }
    /* the kernel sends SIGWINCH to the terminal's foreground process group */
    struct winsize ws = {.ws_row = (unsigned short)json_integer_value(r), .ws_col = (unsigned short)json_integer_value(c)};
    if (ioctl(j->out.fd, TIOCSWINSZ, &ws) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "ioctl TIOCSWINSZ: %s", strerror(errno));
        return;
    }
    agent_send_ok(a, req_id, NULL);
}

static void job_start(struct agent *a, uint32_t req_id, json_t *req, const struct job_request *jr)
{
    if (job_find_req(a, req_id)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "request %u is already running", req_id);
        return;
    }
    if (job_count(a) >= AGENT_MAX_JOBS) {
        agent_send_error(a, req_id, PROTO_ERR_BUSY, "too many commands running (limit %d)", AGENT_MAX_JOBS);
        return;
    }
    char err[256];
    uint64_t timeout_ms;
    size_t max_output;
    if (agent_parse_limits(req, &timeout_ms, &max_output, err, sizeof(err)) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", err);
        return;
    }
    cleanup_strv char **env = proc_build_env(json_object_get(req, "env"), err, sizeof(err));
    if (!env) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", err);
        return;
    }
    int in[2], out[2], errp[2];
    if (jr->pty) {
        int r = open_pty(jr->rows, jr->cols, in, err, sizeof(err));
        if (r < 0) {
            agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "%s", err);
            return;
        }
        /* in[0] the slave (the child's 0, 1, 2), in[1] the master; out[0]
         * a dup of the master read for output */
        out[0] = fcntl(in[1], F_DUPFD_CLOEXEC, 0);
        out[1] = -1;
        if (out[0] < 0) {
            int e = errno;
            close(in[0]);
            close(in[1]);
            agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "dup pty master: %s", strerror(e));
            return;
        }
    } else if (pipe2(in, O_CLOEXEC) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "pipe2: %s", strerror(errno));
        return;
    }
    cleanup_fd int in_r = in[0], in_w = in[1];
    if (!jr->pty && pipe2(out, O_CLOEXEC) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "pipe2: %s", strerror(errno));
        return;
    }
    cleanup_fd int out_r = out[0], out_w = out[1];
    if (pipe2(errp, O_CLOEXEC) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "pipe2: %s", strerror(errno));
        return;
    }
    cleanup_fd int err_r = errp[0], err_w = errp[1];
    if (jr->pty) { /* stderr goes to the terminal too; the pipe's reader sees EOF at once */
        close(err_w);
        err_w = -1;
    }

    struct spawn_spec spec = {
        .policy = &a->policy,
        .argv = jr->argv, .envp = env, .cwd = jr->cwd,
        .stdin_fd = in_r, .stdout_fd = jr->pty ? in_r : out_w, .stderr_fd = jr->pty ? in_r : err_w,
        .extra_fds = &jr->extra_fd, .n_extra = jr->extra_fd >= 0 ? 1 : 0,
        .subreaper = true, /* a timeout finds all it started below it */
        .ctty = jr->pty,
    };
    struct spawn_error se;
    pid_t pid;
    if (proc_spawn(&spec, &pid, &se) < 0) {
        if (se.at_exec)
            send_exec_failure(a, req_id, &se);
        else
            agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "%s", se.msg);
        return;
    }

    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        (void)kill(-pid, SIGKILL); /* reaped as an orphan by the loop */
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    j->req_id = req_id;
    j->pid = pid;
    j->max_output = max_output;
    j->timeout_ms = timeout_ms;
    j->start_ms = now_mono_ms();
    j->deadline_ms = j->start_ms + timeout_ms;
    j->stdin_fd = -1;
    j->pty = jr->pty;
    if (jr->pty)
        close(steal_fd(&in_r)); /* only the child holds the slave: its exit is the master's EIO */
    outstream_init(&j->out, steal_fd(&out_r), PROTO_STDOUT);
    outstream_init(&j->err, steal_fd(&err_r), PROTO_STDERR);
    /* the loop must never block on a child's pipe */
    if (fcntl(j->out.fd, F_SETFL, O_NONBLOCK) < 0 || fcntl(j->err.fd, F_SETFL, O_NONBLOCK) < 0)
        log_warn("fcntl O_NONBLOCK on output pipes of request %u: %s", req_id, strerror(errno));
    if (jr->stdin_len > 0 && (j->stdin_buf = malloc(jr->stdin_len)))
        memcpy(j->stdin_buf, jr->stdin_data, jr->stdin_len);
    if (jr->stdin_open || j->stdin_buf || jr->pty) { /* a terminal's input stays open */
        j->stdin_len = j->stdin_buf ? jr->stdin_len : 0;
        j->stdin_open = jr->stdin_open || jr->pty;
        j->stdin_fd = steal_fd(&in_w);
        if (fcntl(j->stdin_fd, F_SETFL, O_NONBLOCK) < 0) {
            log_warn("fcntl O_NONBLOCK on stdin of request %u: %s; stdin dropped", req_id, strerror(errno));
            job_close_stdin(a, j);
        }
    }
    /* else in_w closes here: the child reads EOF */
    j->next = a->jobs;
    a->jobs = j;
    if (job_register(a, j) < 0) {
        job_kill_tree(j); /* reaped as an orphan by the loop */
        job_free(a, j);
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "the event loop is full");
        return;
    }
    if (jr->notify_start) {
        json_t *ok = json_pack("{s:i}", "pid", (int)pid);
        agent_send_json(a, PROTO_OK, 0, req_id, ok);
        json_decref(ok);
    }
    log_debug("request %u started pid %d", req_id, (int)pid);
}

/* ---- requests -------------------------------------------------------------- */

static int make_code_memfd(const char *code, size_t len)
{
    cleanup_fd int fd = memfd_create("airlock-bash", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = write_all(fd, code, len);
    if (r < 0)
        return r;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -errno;
    return steal_fd(&fd);
}

/* Code that fits in one argument runs as `bash -c CODE`, so bash names it
 * "bash: line 3: ..." in its messages; longer code (an argument is capped at
 * 128 KiB by the kernel) is read from a memfd at fd 3. Never stdin: the
 * script's own commands may read stdin. */
#define BASH_INLINE_MAX (96u * 1024u)

void job_handle_run_bash(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *code = json_object_get(req, "code");
    if (json_string_length(code) <= BASH_INLINE_MAX && !memchr(json_string_value(code), 0, json_string_length(code))) {
        char *argv[] = {"bash", "-c", (char *)json_string_value(code), NULL}; /* $0 = bash, found in PATH */
        struct job_request jr = {.argv = argv, .cwd = "/home/user", .extra_fd = -1};
        job_start(a, req_id, req, &jr);
        return;
    }
    cleanup_fd int mfd = make_code_memfd(json_string_value(code), json_string_length(code));
    if (mfd < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "memfd for bash code: %s", strerror(-mfd));
        return;
    }
    char *argv[] = {"/bin/bash", "/proc/self/fd/3", NULL};
    struct job_request jr = {.argv = argv, .cwd = "/home/user", .extra_fd = mfd};
    job_start(a, req_id, req, &jr);
}

void job_handle_exec(struct agent *a, uint32_t req_id, json_t *req)
{
    json_t *jargv = json_object_get(req, "argv");
    json_t *jshell = json_object_get(req, "shell");
    json_t *jcwd = json_object_get(req, "cwd");
    json_t *jstdin = json_object_get(req, "stdin");
    json_t *jopen = json_object_get(req, "stdin_open");
    json_t *jnotify = json_object_get(req, "notify_start");
    if ((jopen && !json_is_boolean(jopen)) || (jnotify && !json_is_boolean(jnotify))) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "stdin_open and notify_start must be true or false");
        return;
    }
    if ((jargv != NULL) == (jshell != NULL)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "exactly one of argv and shell is required");
        return;
    }
    if ((jcwd && !json_is_null(jcwd) && !json_is_string(jcwd)) || (jstdin && !json_is_null(jstdin) && !json_is_string(jstdin))) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "cwd and stdin must be strings");
        return;
    }
    size_t n = jargv ? json_array_size(jargv) : 3;
    if (jargv && (!json_is_array(jargv) || n == 0 || n > EXEC_MAX_ARGS)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "argv must be a non-empty array of at most %d strings", EXEC_MAX_ARGS);
        return;
    }
    if (jshell && !json_is_string(jshell)) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "shell must be a string");
        return;
    }
    cleanup_free char **argv = calloc(n + 1, sizeof(char *));
    if (!argv) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    if (jargv) {
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(jargv, i);
            if (!json_is_string(s) || (i == 0 && json_string_length(s) == 0)) {
                agent_send_error(a, req_id, PROTO_ERR_INVALID, "argv[%zu] must be a non-empty string", i);
                return;
            }
            argv[i] = (char *)json_string_value(s);
        }
    } else {
        /* bash, as agents and their users expect of a shell string ([[ ]],
         * arrays, pipefail); a template without it falls back to sh */
        argv[0] = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
        argv[1] = "-c";
        argv[2] = (char *)json_string_value(jshell);
    }
    char cwd[PATH_NORM_MAX];
    char err[PATH_NORM_MAX + 64];
    if (proc_resolve_cwd(jcwd, cwd, err, sizeof(err)) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", err);
        return;
    }
    json_t *jpty = json_object_get(req, "pty");
    unsigned short rows = 24, cols = 80;
    if (jpty && !json_is_null(jpty)) {
        json_t *r = json_object_get(jpty, "rows"), *c = json_object_get(jpty, "cols");
        if (!json_is_object(jpty) || (r && (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 1000)) ||
            (c && (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > 1000))) {
            agent_send_error(a, req_id, PROTO_ERR_INVALID, "pty must be {\"rows\": 1..1000, \"cols\": 1..1000}");
            return;
        }
        if (r)
            rows = (unsigned short)json_integer_value(r);
        if (c)
            cols = (unsigned short)json_integer_value(c);
    }
    struct job_request jr = {
        .pty = jpty && !json_is_null(jpty),
        .rows = rows,
        .cols = cols,
        .argv = argv,
        .cwd = cwd,
        .stdin_data = json_is_string(jstdin) ? json_string_value(jstdin) : NULL,
        .stdin_len = json_is_string(jstdin) ? json_string_length(jstdin) : 0,
        .stdin_open = json_is_true(jopen),
        .notify_start = json_is_true(jnotify),
        .extra_fd = -1,
    };
    job_start(a, req_id, req, &jr);
}
