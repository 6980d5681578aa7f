/* qmp.c - the QEMU Machine Protocol, the daemon's side.
 *
 * QMP is JSON objects, one per line ("\r\n"), on the monitor socket
 * (qemu.c: a socket fd, -mon mode=control). The greeting comes first; the
 * session starts in negotiation mode until `qmp_capabilities`. Replies are
 * {"return": ...} or {"error": {"class","desc"}}; asynchronous events
 * ({"event": ...}) may come between, and are skipped here. Each line is
 * parsed by jansson.
 *
 * Calls are synchronous with a deadline: a VMM that stops answering is
 * treated as dead by the caller, never waited on forever.
 */
#include "vm.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "util.h"

#define QMP_LINE_MAX 65536

/* One line, read a byte at a time: QMP lines are short, and no byte after
 * the newline may be consumed (it belongs to the next reply). */
static int read_line(int fd, char *buf, size_t cap, uint64_t deadline_ms)
{
    size_t n = 0;
    for (;;) {
        uint64_t now = now_mono_ms();
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(deadline_ms - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        if (c == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 >= cap)
            return -EMSGSIZE;
        buf[n++] = c;
    }
}

/* The next message that is not an event. */
static int read_reply(int fd, uint64_t deadline_ms, json_t **out, char *err, size_t errlen)
{
    char *line = malloc(QMP_LINE_MAX);
    if (!line)
        return jail_err(err, errlen, -ENOMEM, "qmp");
    int r;
    for (;;) {
        r = read_line(fd, line, QMP_LINE_MAX, deadline_ms);
        if (r < 0) {
            jail_err(err, errlen, r, "qmp: read");
            break;
        }
        json_error_t je;
        json_t *msg = json_loads(line, 0, &je);
        if (!json_is_object(msg)) {
            json_decref(msg);
            r = jail_err(err, errlen, -EPROTO, "qmp: not a JSON object (%s)", je.text);
            break;
        }
        if (json_object_get(msg, "event")) {
            json_decref(msg);
            continue;
        }
        *out = msg;
        r = 0;
        break;
    }
    free(line);
    return r;
}

static int send_command(int fd, const char *cmd, json_t *args, char *err, size_t errlen)
{
    json_t *msg = json_pack("{s:s}", "execute", cmd);
    if (!msg)
        return jail_err(err, errlen, -ENOMEM, "qmp %s", cmd);
    if (args)
        json_object_set(msg, "arguments", args);
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return jail_err(err, errlen, -ENOMEM, "qmp %s", cmd);
    size_t len = strlen(text);
    int r = write_all(fd, text, len);
    if (r == 0)
        r = write_all(fd, "\n", 1);
    free(text);
    return r < 0 ? jail_err(err, errlen, r, "qmp %s: write", cmd) : 0;
}

/* The reply to cmd, sent already: its "return" into *ret (may be NULL), or
 * its "error" as -EREMOTEIO naming the class and description. */
static int await_reply(int fd, const char *cmd, uint64_t deadline, json_t **ret, char *err, size_t errlen)
{
    json_t *reply = NULL;
    int r = read_reply(fd, deadline, &reply, err, errlen);
    if (r < 0)
        return r;
    json_t *e = json_object_get(reply, "error");
    if (e) {
        const char *cls = json_string_value(json_object_get(e, "class"));
        const char *desc = json_string_value(json_object_get(e, "desc"));
        r = jail_err(err, errlen, -EREMOTEIO, "qmp %s: %s: %s", cmd, cls ? cls : "error", desc ? desc : "");
        json_decref(reply);
        return r;
    }
    if (ret)
        *ret = json_incref(json_object_get(reply, "return"));
    json_decref(reply);
    return 0;
}

int qmp_command(int fd, const char *cmd, json_t *args, unsigned timeout_ms, json_t **ret, char *err, size_t errlen)
{
    uint64_t deadline = now_mono_ms() + timeout_ms;
    int r = send_command(fd, cmd, args, err, errlen);
    return r < 0 ? r : await_reply(fd, cmd, deadline, ret, err, errlen);
}

int qmp_handshake(int fd, unsigned timeout_ms, char *err, size_t errlen)
{
    json_t *greeting = NULL;
    int r = read_reply(fd, now_mono_ms() + timeout_ms, &greeting, err, errlen);
    if (r < 0)
        return r;
    bool ok = json_is_object(json_object_get(greeting, "QMP"));
    json_decref(greeting);
    if (!ok)
        return jail_err(err, errlen, -EPROTO, "qmp: no greeting");
    return qmp_command(fd, "qmp_capabilities", NULL, timeout_ms, NULL, err, errlen);
}

int qmp_send_fd(int fd, const char *name, int passed, unsigned timeout_ms, char *err, size_t errlen)
{
    uint64_t deadline = now_mono_ms() + timeout_ms;
    json_t *msg = json_pack("{s:s,s:{s:s}}", "execute", "getfd", "arguments", "fdname", name);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        return jail_err(err, errlen, -ENOMEM, "qmp getfd");
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps left room: its NUL becomes the line's end */
    struct iovec iov = {.iov_base = text, .iov_len = len + 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof(int));
    ssize_t n;
    while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    int r = n < 0 ? -errno : (size_t)n != len + 1 ? -EIO : 0;
    free(text);
    if (r < 0)
        return jail_err(err, errlen, r, "qmp getfd: sendmsg");
    return await_reply(fd, "getfd", deadline, NULL, err, errlen);
}
