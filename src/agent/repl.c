/* repl.c - one code context's persistent REPL (RUN_CODE language=python, r, javascript).
 *
 * One runner process (runner/airlock_runner.py) per context (context.c keeps
 * the table; the default context is the sandbox's first) lives as long as
 * the context, so globals, imports and open files persist across calls and
 * the first call does not pay the interpreter start: it is spawned when the
 * context is created and again whenever it dies. Contexts share nothing but
 * the sandbox (its uid, files and cgroup): each struct repl below is one,
 * and a timeout, kill or crash of one touches only its own runner.
 * repl_spawn_runner is the one place that knows how a language's runner is
 * started; every runner speaks the protocol below.
 *
 *   agent                               runner (uid 1000, seccomp)
 *   cmd_fd  --- u32le len + JSON --->   fd 3  {"code","env"} or {"chdir"} or {"reap"}
 *   res_fd  <-- u32le len + JSON ----   fd 4  {"exit_code","error","results"}
 *   out.fd  <------- raw bytes ------   fd 1  (subprocesses inherit it too)
 *   err.fd  <------- raw bytes ------   fd 2
 *
 * The runner flushes stdout/stderr before it writes a result, and the agent
 * drains both pipes before it sends RESULT, so output never crosses into the
 * next call.
 *
 * Timeouts stop everything the call started, and keep the REPL's state
 * when they can:
 *   1. the runner is stopped (SIGSTOP: it cannot fork meanwhile) and every
 *      process the call started is SIGKILLed (tree.c: descendants of the
 *      runner started during the call, orphans of the call we adopted);
 *   2. SIGCONT + SIGINT: KeyboardInterrupt in the user's code; the runner
 *      then injects SystemExit into each thread the call started;
 *   3. when its result arrives, step 1 once more (what the call started
 *      between 1 and 2) and, after RESULT, {"reap": pids} tells the runner
 *      which of its children we killed, so no zombie is left;
 *   4. a thread that did not stop makes the runner exit with "restart" in
 *      its result; no result within AGENT_INTERRUPT_GRACE_MS, SIGKILL to the
 *      group. Either way a fresh runner, the state lost, the error says so.
 * A call that ends normally leaves its processes and threads running.
 * A runner that dies mid-call (the OOM killer) yields a ProcessKilled error
 * and a fresh runner.
 *
 * The runner is no child subreaper (jobs' roots are, job.c): Python never
 * waits for children it did not start, so orphans it adopted would stay
 * zombies, counted against pids.max for the REPL's whole life. Orphans of a
 * python call come to the agent, which reaps them, and which tells them by
 * their start time (tree.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define REPL_MAX_RESULT (64u << 20) /* a runner that claims more is broken */
#define REPL_HOT_RESTART_MS 1000    /* died this soon while idle: start lazily */

void repl_init(struct repl *r)
{
    memset(r, 0, sizeof(*r));
    r->cmd_fd = r->res_fd = -1;
    outstream_init(&r->out, -1, PROTO_STDOUT);
    outstream_init(&r->err, -1, PROTO_STDERR);
}

static void repl_close_fds(struct agent *a, struct repl *r)
{
    ev_unwatch(a, r->res_watch);
    r->res_watch = 0;
    if (r->cmd_fd >= 0)
        close(r->cmd_fd);
    if (r->res_fd >= 0)
        close(r->res_fd);
    r->cmd_fd = r->res_fd = -1;
    outstream_close(a, &r->out);
    outstream_close(a, &r->err);
    free(r->rbuf);
    r->rbuf = NULL;
    r->rlen = r->rcap = 0;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
    p[0] = p[1] = -1;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static void repl_register(struct agent *a, struct repl *r);
static int repl_write_command(struct repl *r, json_t *cmd);

bool repl_language_known(const char *language)
{
    return lang_canonical(language) != NULL;
}

/* The one place a context's runner process is started, by its language:
 * fds are its {stdin, stdout, stderr, cmd, res} (the runner's 0-4; the
 * protocol of this file's header for every language). Python is forked
 * from the zygote when the sandbox has one, else exec'd; R and JavaScript
 * are exec'd (lang.c says why), with the command line lang.c gives. 0 with
 * *pid, or -errno with se filled (-ENOENT: the template lacks the
 * interpreter). */
static int repl_spawn_runner(struct agent *a, const char *language, const char *cwd, const int fds[5], char **env,
                             pid_t *pid, struct spawn_error *se)
{
    char *argv[LANG_MAX_ARGV], runner_file[PATH_MAX];
    se->err = 0;
    se->at_exec = false;
    int rc = lang_runner_argv(a, language, argv, runner_file, sizeof(runner_file), se->msg, sizeof(se->msg));
    if (rc < 0) {
        se->err = -rc;
        return rc;
    }
    int extra[2] = {fds[3], fds[4]};
    struct spawn_spec spec = {
        .policy = &a->policy,
        .argv = argv, .envp = env, .cwd = cwd,
        .stdin_fd = fds[0], .stdout_fd = fds[1], .stderr_fd = fds[2],
        .extra_fds = extra, .n_extra = 2,
    };
    /* a Python REPL forked by the zygote: same fds, environment and drop
     * sequence, numpy and pandas already imported (zygote_client.c); it
     * starts in /home/user, repl_start sends it a chdir for another cwd */
    uint64_t t0 = now_mono_us();
    if (strcmp(language, "python") == 0 && zygote_spawn(a, fds, pid) == 0) {
        log_info("python runner forked by the zygote in %.2f ms", (double)(now_mono_us() - t0) / 1000.0);
        return 0;
    }
    return proc_spawn(&spec, pid, se);
}

int repl_start(struct agent *a, struct repl *r)
{
    int in[2] = {-1, -1}, cmd[2] = {-1, -1}, res[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int rc = 0;
    cleanup_strv char **env = NULL;
    r->start_error[0] = '\0';
    r->restart_pending = false;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(cmd, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(r->start_error, sizeof(r->start_error), "pipe2: %s", strerror(errno));
        goto out;
    }
    /* The R and JavaScript runners cannot mark fds close-on-exec, so they
     * reopen their ends through /proc/self/fd (close-on-exec) and close 3
     * and 4 (runner headers). A pipe's inode is its creator's, mode 0600:
     * uid 1000 may reopen it only once it owns it. Only the sandbox's own
     * uid gains anything, which can signal and read the runner anyway. */
    if (lang_needs_fd_reopen(r->language) && (fchown(cmd[0], AGENT_USER_UID, AGENT_USER_GID) < 0 ||
                                              fchown(res[1], AGENT_USER_UID, AGENT_USER_GID) < 0)) {
        rc = -errno;
        snprintf(r->start_error, sizeof(r->start_error), "fchown runner pipe: %s", strerror(errno));
        goto out;
    }
    char err_env[256];
    env = proc_build_env(NULL, err_env, sizeof(err_env));
    if (!env) {
        rc = -ENOMEM;
        snprintf(r->start_error, sizeof(r->start_error), "environment: %s", err_env);
        goto out;
    }
    struct spawn_error se;
    pid_t pid;
    int fds[5] = {in[0], out[1], err[1], cmd[0], res[1]};
    const char *cwd = r->cwd[0] ? r->cwd : "/home/user";
    if ((rc = repl_spawn_runner(a, r->language, cwd, fds, env, &pid, &se)) < 0) {
        snprintf(r->start_error, sizeof(r->start_error), "%s", se.msg);
        goto out;
    }
    /* the runner's ends are its own now; stdin stays at EOF (input() raises
     * EOFError instead of hanging) */
    r->pid = pid;
    r->cmd_fd = steal_fd(&cmd[1]);
    r->res_fd = steal_fd(&res[0]);
    outstream_init(&r->out, steal_fd(&out[0]), PROTO_STDOUT);
    outstream_init(&r->err, steal_fd(&err[0]), PROTO_STDERR);
    if (set_nonblock(r->res_fd) < 0 || set_nonblock(r->out.fd) < 0 || set_nonblock(r->err.fd) < 0)
        log_warn("fcntl O_NONBLOCK on runner pipes: %s", strerror(errno));
    r->started_ms = now_mono_ms();
    repl_register(a, r);
    /* a forked runner starts in /home/user whatever its context's cwd: the
     * first command moves it (no reply; the runner reads it before any
     * code, so the first cell already runs there) */
    if (strcmp(r->language, "python") == 0 && strcmp(cwd, "/home/user") != 0) {
        json_t *chdir_cmd = json_pack("{s:s}", "chdir", cwd);
        int wr = chdir_cmd ? repl_write_command(r, chdir_cmd) : -ENOMEM;
        json_decref(chdir_cmd);
        if (wr < 0)
            log_warn("context %s: cannot send its cwd to the runner: %s", r->id, strerror(-wr));
    }
    log_debug("%s runner of context %s started, pid %d", r->language, r->id, (int)pid);
out:
    close_pair(in);
    close_pair(cmd);
    close_pair(res);
    close_pair(out);
    close_pair(err);
    return rc;
}

void repl_kill(struct agent *a)
{
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (a->repls[i].used && a->repls[i].pid > 0)
            (void)kill(-a->repls[i].pid, SIGKILL);
}

void repl_free(struct agent *a, struct repl *r)
{
    repl_close_fds(a, r);
}

pid_t repl_pgid_of(const struct agent *a, uint32_t req_id)
{
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++) {
        const struct repl *r = &a->repls[i];
        if (req_id != 0 && r->used && r->req_id == req_id && r->pid > 0)
            return r->pid;
    }
    return 0;
}

/* Kill and collect the runner synchronously; used when it is already broken
 * (we cannot write to it, or it sent garbage). */
static void repl_kill_and_reap(struct agent *a, struct repl *r)
{
    if (r->pid <= 0)
        return;
    (void)kill(-r->pid, SIGKILL);
    ev_child_cancel(a, r->pid); /* reaped here, not by the loop */
    int st;
    while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;
    repl_close_fds(a, r);
}

/* ---- sending a call -------------------------------------------------------- */

static int repl_write_command(struct repl *r, json_t *cmd)
{
    cleanup_free char *s = json_dumps(cmd, JSON_COMPACT);
    if (!s)
        return -ENOMEM;
    size_t len = strlen(s);
    uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    /* blocking: the idle runner is always reading its command pipe */
    int rc = write_all(r->cmd_fd, hdr, sizeof(hdr));
    if (rc == 0)
        rc = write_all(r->cmd_fd, s, len);
    return rc;
}

static int validate_env(json_t *env, char *err, size_t errlen)
{
    if (!env || json_is_null(env))
        return 0;
    /* proc_build_env applies the same rules as for bash and exec */
    cleanup_strv char **v = proc_build_env(env, err, errlen);
    return v ? 0 : -EINVAL;
}

static void repl_arm_timer(struct agent *a, struct repl *r);

void repl_handle_run(struct agent *a, struct repl *r, uint32_t req_id, json_t *req)
{
    if (r->req_id != 0) {
        agent_send_error(a, req_id, PROTO_ERR_BUSY, "a call (request %u) is still running in context %s", r->req_id, r->id);
        return;
    }
    char err[256];
    uint64_t timeout_ms;
    size_t max_output;
    if (agent_parse_limits(req, &timeout_ms, &max_output, err, sizeof(err)) < 0 ||
        validate_env(json_object_get(req, "env"), err, sizeof(err)) < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", err);
        return;
    }
    int started = r->pid > 0 ? 0 : repl_start(a, r);
    if (started == -ENOENT) { /* the template lacks the interpreter (lang.c) */
        agent_send_error(a, req_id, PROTO_ERR_INVALID, "%s", r->start_error);
        return;
    }
    if (started < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "%s runner unavailable: %s", r->language, r->start_error);
        return;
    }
    json_t *env = json_object_get(req, "env");
    /* before the runner can start anything: processes started after this
     * mark are the call's if it times out */
    tree_mark_now(&r->call_mark, a->last_pid_fd);
    uint64_t start = now_mono_ms();
    /* the deadline on CLOCK_MONOTONIC, which the runner shares: it tells
     * our timeout's SIGINT from a user's (SIGNAL) by it */
    json_t *cmd = json_pack("{s:O, s:O, s:I}", "code", json_object_get(req, "code"), "env", json_is_object(env) ? env : json_null(),
                            "deadline_mono_ms", (json_int_t)(start + timeout_ms));
    int rc = repl_write_command(r, cmd);
    if (rc == -EPIPE || rc == -EBADF) {
        /* it died between calls and we have not reaped it yet: start over */
        log_warn("%s runner gone before call %u; restarting", r->language, req_id);
        r->state_lost = true;
        repl_kill_and_reap(a, r);
        if (repl_start(a, r) == 0)
            rc = repl_write_command(r, cmd);
        else
            rc = -ECHILD;
    }
    json_decref(cmd);
    if (rc < 0) {
        agent_send_error(a, req_id, PROTO_ERR_INTERNAL, "cannot send code to the %s runner: %s", r->language,
                         r->start_error[0] ? r->start_error : strerror(-rc));
        return;
    }
    r->req_id = req_id;
    r->max_output = max_output;
    r->timeout_ms = timeout_ms;
    r->call_start_ms = start;
    r->deadline_ms = r->call_start_ms + timeout_ms;
    r->kill_at_ms = 0;
    r->timed_out = false;
    r->killed_by_agent = false;
    r->jobs_ended_at_start = a->jobs_ended;
    r->calls_at_start = ++a->repl_calls;
    r->others_busy = false;
    for (size_t i = 0; i < AGENT_MAX_CONTEXTS; i++)
        if (&a->repls[i] != r && a->repls[i].used && a->repls[i].req_id != 0)
            r->others_busy = true;
    r->restart_reason[0] = '\0';
    r->nreap = 0;
    outstream_reset(&r->out);
    outstream_reset(&r->err);
    repl_arm_timer(a, r);
}

/* ---- what a timed-out call started ------------------------------------------ */

/* SIGKILL the processes of the timed-out call (tree.c), the runner stopped
 * meanwhile when `stop` so that it cannot start new ones. Killed children of
 * the runner are remembered for the reap message. */
static void repl_kill_call_processes(struct agent *a, struct repl *r, bool stop)
{
    if (r->pid <= 0)
        return;
    if (stop && kill(r->pid, SIGSTOP) < 0)
        log_warn("kill SIGSTOP %d: %s", (int)r->pid, strerror(errno));
    /* adopted orphans are told apart by start time alone unless something
     * else may have left some meanwhile: a job that ended, or another
     * context's call (then only those of this runner's session) */
    bool ambiguous = a->jobs_ended != r->jobs_ended_at_start || r->others_busy || a->repl_calls != r->calls_at_start;
    int n = tree_kill_call(a, r->pid, &r->call_mark, ambiguous, r->reap, &r->nreap, REPL_MAX_REAP);
    if (n > 0)
        log_debug("request %u timed out: killed %d processes it started", r->req_id, n);
    if (stop && kill(r->pid, SIGCONT) < 0)
        log_warn("kill SIGCONT %d: %s", (int)r->pid, strerror(errno));
}

/* After RESULT: the runner collects the children we killed (it is idle,
 * reading commands). A runner that cannot take it is restarted later by the
 * usual path, the zombies go with it. */
static void repl_send_reap(struct repl *r)
{
    if (r->nreap == 0 || r->pid <= 0)
        return;
    json_t *pids = json_array();
    for (size_t i = 0; i < r->nreap; i++)
        json_array_append_new(pids, json_integer(r->reap[i]));
    json_t *cmd = json_pack("{s:o}", "reap", pids);
    int rc = cmd ? repl_write_command(r, cmd) : -ENOMEM;
    json_decref(cmd);
    if (rc < 0)
        log_warn("cannot send the reap list to the %s runner: %s", r->language, strerror(-rc));
    r->nreap = 0;
}

/* ---- finishing a call ------------------------------------------------------ */

static json_t *timeout_error(const struct repl *r, bool restarted, json_t *traceback)
{
    char msg[400];
    if (restarted && r->restart_reason[0])
        snprintf(msg, sizeof(msg), "execution exceeded %g s and was interrupted, but %s; the REPL was restarted and its state is lost",
                 (double)r->timeout_ms / 1000.0, r->restart_reason);
    else if (restarted)
        snprintf(msg, sizeof(msg),
                 "execution exceeded %g s; the REPL did not respond to the interrupt and was restarted, its state is lost",
                 (double)r->timeout_ms / 1000.0);
    else
        snprintf(msg, sizeof(msg), "execution exceeded %g s and was interrupted", (double)r->timeout_ms / 1000.0);
    return json_pack("{s:s, s:s, s:s}", "name", "TimeoutError", "value", msg, "traceback",
                     json_is_string(traceback) ? json_string_value(traceback) : "");
}

/* The frame fields every python RESULT carries. */
static json_t *result_base(struct repl *r)
{
    /* language: the context's, so the daemon can name the process in an
     * OOM verdict when the call named only a context */
    return json_pack("{s:I, s:b, s:b, s:b, s:s}", "duration_ms", (json_int_t)(now_mono_ms() - r->call_start_ms), "stdout_truncated",
                     r->out.truncated, "stderr_truncated", r->err.truncated, "timed_out", r->timed_out, "language",
                     r->language);
}

static void repl_end_call(struct agent *a, struct repl *r, json_t *result)
{
    uint32_t req_id = r->req_id;
    r->req_id = 0;
    r->kill_at_ms = 0;
    ev_timer_cancel(a, r->timer);
    r->timer = 0;
    agent_send_result(a, req_id, result);
}

/* Which engine runs the cells (IPython, or the plain one of a template
 * without it) says nothing about one call, so it is a log line, written when
 * a runner's first result shows it or it changes. */
static void note_engine(struct repl *r, json_t *engine)
{
    if (!json_is_string(engine) || strcmp(r->engine, json_string_value(engine)) == 0)
        return;
    snprintf(r->engine, sizeof(r->engine), "%s", json_string_value(engine));
    log_info("%s runner %d: %s engine", r->language, (int)r->pid, r->engine);
}

/* A complete message from the runner: output first, then RESULT. */
static void repl_finish_with_message(struct agent *a, struct repl *r, const uint8_t *msg, size_t len)
{
    json_error_t jerr;
    json_t *rep = json_loadb((const char *)msg, len, 0, &jerr);
    if (!r->req_id) {
        log_warn("python runner sent a result with no call in progress");
        json_decref(rep);
        return;
    }
    if (r->timed_out)
        repl_kill_call_processes(a, r, false); /* what it started after the first sweep */
    json_t *restart = rep ? json_object_get(rep, "restart") : NULL;
    if (json_is_string(restart))
        snprintf(r->restart_reason, sizeof(r->restart_reason), "%s", json_string_value(restart));
    outstream_drain(a, &r->out, r->req_id, r->max_output);
    outstream_drain(a, &r->err, r->req_id, r->max_output);

    json_t *res = result_base(r);
    json_t *exit_code = rep ? json_object_get(rep, "exit_code") : NULL;
    json_t *error = rep ? json_object_get(rep, "error") : NULL;
    json_t *results = rep ? json_object_get(rep, "results") : NULL;
    if (!rep) {
        log_error("python runner result is not JSON: %s", jerr.text);
        error = json_pack("{s:s, s:s, s:s}", "name", "InternalError", "value", "the runner sent an unreadable result", "traceback", "");
        json_object_set_new(res, "error", error);
        json_object_set_new(res, "exit_code", json_integer(1));
    } else {
        json_object_set_new(res, "exit_code", json_integer(json_is_integer(exit_code) ? json_integer_value(exit_code) : 1));
        json_object_set_new(res, "error", json_is_object(error) ? json_incref(error) : json_null());
    }
    bool restarting = r->restart_reason[0] != '\0';
    if (r->timed_out)
        json_object_set_new(res, "error",
                            timeout_error(r, restarting, json_is_object(error) ? json_object_get(error, "traceback") : NULL));
    if (restarting)
        json_object_set_new(res, "exit_code", json_integer(124));
    json_object_set_new(res, "results", json_is_array(results) ? json_incref(results) : json_array());
    json_t *count = rep ? json_object_get(rep, "execution_count") : NULL;
    json_object_set_new(res, "execution_count", json_is_integer(count) ? json_incref(count) : json_null());
    note_engine(r, rep ? json_object_get(rep, "engine") : NULL);
    json_object_set_new(res, "killed_signal", json_null());
    json_object_set_new(res, "repl_restarted", json_boolean(restarting || r->state_lost));
    r->state_lost = false;
    json_decref(rep);
    repl_end_call(a, r, res);
    if (restarting) {
        r->nreap = 0;
        r->restart_now = true; /* repl_on_result_readable, done with rbuf */
        return;
    }
    repl_send_reap(r);
}

/* Read what is available of the runner's result. A message is a u32le length
 * and that many bytes of JSON; it may arrive in pieces. */
static void repl_on_result_readable(struct agent *a, struct repl *r)
{
    while (r->res_fd >= 0) {
        if (r->rcap - r->rlen < 65536) {
            size_t ncap = r->rcap ? r->rcap * 2 : 131072;
            uint8_t *nb = realloc(r->rbuf, ncap);
            if (!nb) {
                log_error("out of memory reading the python result");
                (void)kill(-r->pid, SIGKILL);
                return;
            }
            r->rbuf = nb;
            r->rcap = ncap;
        }
        ssize_t n = read(r->res_fd, r->rbuf + r->rlen, r->rcap - r->rlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            log_warn("read python result pipe: %s", strerror(errno));
            n = 0;
        }
        if (n == 0) {
            /* the runner is exiting; repl_on_exit handles it when reaped */
            ev_unwatch(a, r->res_watch);
            r->res_watch = 0;
            close(r->res_fd);
            r->res_fd = -1;
            return;
        }
        r->rlen += (size_t)n;
        while (r->rlen >= 4) {
            size_t len = (size_t)r->rbuf[0] | (size_t)r->rbuf[1] << 8 | (size_t)r->rbuf[2] << 16 | (size_t)r->rbuf[3] << 24;
            if (len > REPL_MAX_RESULT) {
                log_error("python runner result of %zu bytes exceeds the limit; killing it", len);
                (void)kill(-r->pid, SIGKILL);
                r->rlen = 0;
                return;
            }
            if (r->rlen < 4 + len)
                break;
            repl_finish_with_message(a, r, r->rbuf + 4, len);
            memmove(r->rbuf, r->rbuf + 4 + len, r->rlen - 4 - len);
            r->rlen -= 4 + len;
            if (r->restart_now) {
                /* It exits by itself (threads it could not stop); done here,
                 * synchronously, so that the next call cannot be written to
                 * the old runner's pipe. What it left in its group goes with
                 * it, as in repl_on_exit. */
                log_info("python runner %d: %s; restarting it", (int)r->pid, r->restart_reason);
                r->restart_now = false;
                repl_kill_and_reap(a, r);
                if (repl_start(a, r) < 0)
                    log_warn("python runner restart failed: %s", r->start_error);
                return;
            }
        }
    }
}

/* The runner process ended. If a call was running, it ends here with an
 * error saying why; then a fresh runner is started. */
static void repl_on_exit(struct agent *a, void *ctx, pid_t pid, int wstatus)
{
    struct repl *r = ctx;
    if (pid != r->pid) {
        log_debug("reaped former python runner %d", (int)pid);
        return; /* one we replaced already: its exit is nobody's business */
    }
    /* a result written just before dying still counts */
    repl_on_result_readable(a, r);
    bool in_call = r->req_id != 0;
    if (in_call) {
        outstream_drain(a, &r->out, r->req_id, r->max_output);
        outstream_drain(a, &r->err, r->req_id, r->max_output);
    }
    uint64_t lived = now_mono_ms() - r->started_ms;
    /* the daemon's log shows why a sandbox lost its REPL state */
    if (WIFSIGNALED(wstatus))
        log_info("python runner %d killed by signal %d after %llu ms; restarting", (int)r->pid, WTERMSIG(wstatus),
                 (unsigned long long)lived);
    else
        log_info("python runner %d exited with status %d after %llu ms; restarting", (int)r->pid,
                 WEXITSTATUS(wstatus), (unsigned long long)lived);
    /* whatever it left in the group (subprocesses) goes with it */
    (void)kill(-r->pid, SIGKILL);
    /* r->pid is not pid when the result read above restarted the runner
     * (its exit seen before its restart result): the fresh one is killed
     * too and, as before the loop had a child registry, reaped as an
     * orphan; the next call starts another */
    if (r->pid != pid)
        ev_child_cancel(a, r->pid);
    r->pid = 0;
    repl_close_fds(a, r);

    if (in_call) {
        json_t *res = result_base(r);
        json_t *killed = json_null();
        int code;
        json_t *error = json_null();
        if (r->killed_by_agent) {
            code = 124;
            error = timeout_error(r, true, NULL);
        } else if (WIFSIGNALED(wstatus)) {
            int sig = WTERMSIG(wstatus);
            code = 128 + sig;
            killed = json_integer(sig);
            char msg[160];
            snprintf(msg, sizeof(msg), "the %s process was killed by signal %d; the REPL was restarted and its state lost", lang_label(r->language), sig);
            error = json_pack("{s:s, s:s, s:s}", "name", "ProcessKilled", "value", msg, "traceback", "");
        } else {
            code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
        }
        json_object_set_new(res, "exit_code", json_integer(code));
        json_object_set_new(res, "error", error);
        json_object_set_new(res, "results", json_array());
        json_object_set_new(res, "killed_signal", killed);
        json_object_set_new(res, "repl_restarted", json_true());
        r->state_lost = false;
        repl_end_call(a, r, res);
    } else {
        /* between calls: what it held is gone, and the next call must say
         * so (the caller's variables are not there any more) */
        r->state_lost = true;
    }
    if (!in_call && lived < REPL_HOT_RESTART_MS) {
        /* dying right after start (broken python?) must not become a fork
         * loop; the next RUN_CODE tries again and reports the error */
        r->restart_pending = true;
        return;
    }
    if (repl_start(a, r) < 0)
        log_warn("python runner restart failed: %s", r->start_error);
}

void repl_stop(struct agent *a, struct repl *r, const char *why)
{
    uint32_t req_id = r->req_id;
    if (req_id != 0) {
        outstream_drain(a, &r->out, req_id, r->max_output);
        outstream_drain(a, &r->err, req_id, r->max_output);
    }
    repl_kill_and_reap(a, r);
    if (req_id != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "context %s was %s while this call ran; its state is lost", r->id,
                 strcmp(why, "ContextRemoved") == 0 ? "removed" : "restarted");
        json_t *res = result_base(r);
        json_object_set_new(res, "exit_code", json_integer(128 + SIGKILL));
        json_object_set_new(res, "error", json_pack("{s:s, s:s, s:s}", "name", why, "value", msg, "traceback", ""));
        json_object_set_new(res, "results", json_array());
        json_object_set_new(res, "killed_signal", json_integer(SIGKILL));
        json_object_set_new(res, "repl_restarted", json_true());
        repl_end_call(a, r, res);
    }
    r->state_lost = false; /* asked for: a restart says so in its reply, not in the next result */
    r->restart_pending = false;
    r->nreap = 0;
}

/* ---- timeouts -------------------------------------------------------------- */

static uint64_t repl_next_deadline(const struct repl *r)
{
    if (!r->req_id || r->killed_by_agent)
        return 0;
    return r->timed_out ? r->kill_at_ms : r->deadline_ms;
}

static void repl_on_timer(struct agent *a, struct repl *r, uint64_t now)
{
    if (!r->req_id || r->pid <= 0)
        return;
    if (!r->timed_out && now >= r->deadline_ms) {
        r->timed_out = true;
        r->kill_at_ms = now + AGENT_INTERRUPT_GRACE_MS;
        repl_kill_call_processes(a, r, true);
        /* the runner only, like Ctrl-C in Jupyter: its handler raises
         * KeyboardInterrupt in the user's code. To its main thread: only
         * that one runs Python signal handlers, and a signal sent to the
         * process may be given to another thread (the kernel passes over a
         * thread that still has signals pending, as the main thread has
         * right after the SIGCONT), which leaves the main thread asleep. */
        if (tgkill(r->pid, r->pid, SIGINT) < 0)
            log_warn("tgkill SIGINT %d: %s", (int)r->pid, strerror(errno));
        return;
    }
    if (r->timed_out && !r->killed_by_agent && now >= r->kill_at_ms) {
        r->killed_by_agent = true;
        /* first what left the group, while the runner still holds its tree */
        repl_kill_call_processes(a, r, true);
        if (kill(-r->pid, SIGKILL) < 0)
            log_warn("kill SIGKILL -%d: %s", (int)r->pid, strerror(errno));
        /* RESULT is sent from repl_on_exit once the kernel reports it dead */
    }
}

static void repl_on_deadline(struct agent *a, void *ctx)
{
    struct repl *r = ctx;
    r->timer = 0; /* fired */
    repl_on_timer(a, r, now_mono_ms());
    repl_arm_timer(a, r);
}

/* One timer at the call's next deadline: the timeout, then the grace
 * before SIGKILL; none when idle or once the runner is being killed. */
static void repl_arm_timer(struct agent *a, struct repl *r)
{
    ev_timer_cancel(a, r->timer);
    r->timer = 0;
    uint64_t at = repl_next_deadline(r);
    if (at != 0 && (r->timer = ev_timer_add(a, at, repl_on_deadline, r)) < 0)
        r->timer = 0; /* cannot happen (one timer per job and one here) */
}

/* ---- the loop's callbacks ---------------------------------------------------- */

static void repl_on_stdout(struct agent *a, void *ctx, short revents)
{
    struct repl *r = ctx;
    (void)revents;
    (void)outstream_pump(a, &r->out, r->req_id, r->max_output);
}

static void repl_on_stderr(struct agent *a, void *ctx, short revents)
{
    struct repl *r = ctx;
    (void)revents;
    (void)outstream_pump(a, &r->err, r->req_id, r->max_output);
}

static void repl_on_result(struct agent *a, void *ctx, short revents)
{
    (void)revents;
    repl_on_result_readable(a, ctx);
}

/* A started runner: its exit and pipes to the loop. */
static void repl_register(struct agent *a, struct repl *r)
{
    if (ev_child_add(a, r->pid, repl_on_exit, r) < 0)
        log_error("python runner %d: its exit cannot be tracked", (int)r->pid);
    outstream_watch(a, &r->out, repl_on_stdout, r);
    outstream_watch(a, &r->err, repl_on_stderr, r);
    r->res_watch = ev_watch(a, r->res_fd, POLLIN, repl_on_result, r);
    if (r->res_watch < 0)
        r->res_watch = 0;
}
