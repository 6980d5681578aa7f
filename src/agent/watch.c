/* watch.c - FILE_WATCH: a directory's changes, streamed (inotify).
 *
 * A watch is a read of its directory (pathpolicy_open_read: not /proc,
 * /sys, /dev, also where symlinks lead); with recursive, every directory
 * below is watched too, entered as LIST enters them (O_NOFOLLOW, never a
 * kernel interface), and directories created or moved in later are added
 * as they appear. inotify takes a path, not a descriptor: each directory
 * is handed to it as /proc/self/fd/N of the descriptor opened here, so the
 * kernel watches exactly the directory the policy checked, not whatever a
 * path names by the time it is resolved again.
 *
 * Events, named as fsnotify (E2B's) names them: create (created, or moved
 * in), write (modified), remove, rename (moved away: the old path), chmod
 * (attributes); an upload's temporary file is not reported, its rename
 * into place is the file's create. Each read of the inotify descriptor becomes one FILE_EVENT
 * frame {"events":[{"type","path","is_dir"}]}; "overflow" says the kernel
 * dropped events. The watch ends with a FILE_EVENT carrying END and
 * {"end": reason} when its directory is removed or moved away, and
 * silently when the daemon cancels it (an ERROR with its id: the client
 * left). The daemon does not acknowledge events: a client that stops
 * reading has its events dropped by the daemon's bounded queue, never the
 * sandbox's other requests stalled (agent_client.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "pathpolicy.h"
#include "util.h"

#define WATCH_MAX_DIRS 4096 /* per watch: inotify watches are a per-user kernel resource */
#define WATCH_MAX_DEPTH 64
#define WATCH_FRAME_BUDGET (PROTO_MAX_PAYLOAD / 2)
#define WATCH_MASK                                                                                                    \
    (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |    \
     IN_ONLYDIR | IN_EXCL_UNLINK)

struct watch_dir {
    int wd;
    char *path;
};

struct file_watch {
    struct file_watch *next;
    uint32_t req_id;
    int ifd;
    int ev_handle;
    int root_wd;
    bool recursive;
    int n, cap;
    struct watch_dir *dirs;
};

static struct file_watch *watch_find(struct agent *a, uint32_t req_id)
{
    for (struct file_watch *w = a->file_watches; w; w = w->next)
        if (w->req_id == req_id)
            return w;
    return NULL;
}

static void watch_free(struct agent *a, struct file_watch *w)
{
    for (struct file_watch **pp = &a->file_watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    ev_unwatch(a, w->ev_handle);
    if (w->ifd >= 0)
        close(w->ifd);
    for (int i = 0; i < w->n; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    free(w);
}

void watch_free_all(struct agent *a)
{
    while (a->file_watches)
        watch_free(a, a->file_watches);
}

static struct watch_dir *dir_of(struct file_watch *w, int wd)
{
    for (int i = 0; i < w->n; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

/* A directory moved within the tree keeps its inotify watch (the same
 * inode): its path, and its subdirectories', change with it. */
static void rename_dir(struct file_watch *w, struct watch_dir *d, const char *path)
{
    size_t old = strlen(d->path);
    cleanup_free char *from = strdup(d->path);
    if (!from)
        return;
    for (int i = 0; i < w->n; i++) {
        char *p = w->dirs[i].path, *np = NULL;
        if (strcmp(p, from) == 0)
            np = strdup(path);
        else if (strncmp(p, from, old) == 0 && p[old] == '/' && asprintf(&np, "%s%s", path, p + old) < 0)
            np = NULL;
        if (np) {
            free(p);
            w->dirs[i].path = np;
        }
    }
}

/* Watch the directory fd (reached as path). 0, or -errno (-ENOSPC: the
 * watch's or the kernel's limit). */
static int add_dir(struct file_watch *w, int fd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int wd = inotify_add_watch(w->ifd, proc, WATCH_MASK);
    if (wd < 0)
        return -errno;
    struct watch_dir *d = dir_of(w, wd);
    if (d) {
        rename_dir(w, d, path);
        return 0;
    }
    if (w->n >= WATCH_MAX_DIRS) {
        inotify_rm_watch(w->ifd, wd);
        return -ENOSPC;
    }
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        struct watch_dir *nd = realloc(w->dirs, (size_t)cap * sizeof(*nd));
        if (!nd)
            return -ENOMEM;
        w->dirs = nd;
        w->cap = cap;
    }
    if (!(w->dirs[w->n].path = strdup(path)))
        return -ENOMEM;
    w->dirs[w->n++].wd = wd;
    return 0;
}

static bool join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATHPOLICY_NORM_MAX, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
    return n > 0 && n < PATHPOLICY_NORM_MAX;
}

/* Watch fd's subdirectories, and theirs. Stops at the first hard error
 * (limits); a subdirectory that went away or cannot be read is skipped. */
static int add_tree(struct agent *a, struct file_watch *w, int fd, const char *path, int depth)
{
    if (depth > WATCH_MAX_DEPTH)
        return 0;
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return -errno;
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return 0;
    }
    int r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(dir))) {
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATHPOLICY_NORM_MAX];
        if (!join(sub, path, de->d_name))
            continue;
        cleanup_fd int cfd = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0 || !pathpolicy_may_walk(a, cfd, sub))
            continue;
        r = add_dir(w, cfd, sub);
        if (r == 0)
            r = add_tree(a, w, cfd, sub, depth + 1);
    }
    closedir(dir);
    return r;
}

/* A directory that appeared in a watched one (created or moved in): watch
 * it and what it holds. Best effort: a limit reached is logged. */
static void add_new_dir(struct agent *a, struct file_watch *w, struct watch_dir *parent, const char *name,
                        const char *path)
{
    /* resolved inside the root again, then entered without following */
    cleanup_fd int pfd = pathpolicy_open_system_file(a, parent->path);
    cleanup_fd int dfd = pfd >= 0 ? openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (dfd < 0 || !pathpolicy_may_walk(a, dfd, path))
        return;
    int r = add_dir(w, dfd, path);
    if (r == 0)
        r = add_tree(a, w, dfd, path, 1);
    if (r < 0)
        log_warn("watch %u: %s not watched: %s", w->req_id, path, strerror(-r));
}

static const char *event_type(uint32_t mask)
{
    if (mask & (IN_CREATE | IN_MOVED_TO))
        return "create";
    if (mask & IN_MODIFY)
        return "write";
    if (mask & IN_DELETE)
        return "remove";
    if (mask & IN_MOVED_FROM)
        return "rename";
    if (mask & IN_ATTRIB)
        return "chmod";
    return NULL;
}

static void flush(struct agent *a, struct file_watch *w, json_t **events, size_t *budget, const char *end)
{
    if (json_array_size(*events) == 0 && !end)
        return;
    json_t *msg = json_pack("{s:o}", "events", *events);
    if (end)
        json_object_set_new(msg, "end", json_string(end));
    agent_send_json(a, PROTO_FILE_EVENT, end ? PROTO_F_END : 0, w->req_id, msg);
    json_decref(msg);
    *events = json_array();
    *budget = 0;
}

static void on_inotify(struct agent *a, void *ctx, short revents)
{
    (void)revents;
    struct file_watch *w = ctx;
    _Alignas(struct inotify_event) char buf[64 * 1024];
    ssize_t n = read(w->ifd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        log_warn("watch %u: read inotify: %s", w->req_id, n < 0 ? strerror(errno) : "EOF");
        json_t *none = json_array();
        size_t b = 0;
        flush(a, w, &none, &b, "the watch failed");
        json_decref(none);
        watch_free(a, w);
        return;
    }
    json_t *events = json_array();
    size_t budget = 0;
    const char *end = NULL;
    for (char *p = buf; p < buf + n;) {
        struct inotify_event *ie = (struct inotify_event *)p;
        p += sizeof(*ie) + ie->len;
        if (ie->mask & IN_Q_OVERFLOW) {
            json_array_append_new(events, json_pack("{s:s}", "type", "overflow"));
            continue;
        }
        struct watch_dir *d = dir_of(w, ie->wd);
        if (!d)
            continue;
        if (ie->wd == w->root_wd && (ie->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
            end = ie->mask & IN_MOVE_SELF ? "the watched directory was moved" : "the watched directory was removed";
            break;
        }
        if (ie->mask & IN_IGNORED) { /* a subdirectory's watch is gone (removed) */
            free(d->path);
            *d = w->dirs[--w->n];
            continue;
        }
        const char *type = ie->len ? event_type(ie->mask) : NULL;
        if (!type || strncmp(ie->name, FILES_TMP_PREFIX, strlen(FILES_TMP_PREFIX)) == 0)
            continue; /* an upload's temporary file: its rename into place is the create */
        char path[PATHPOLICY_NORM_MAX];
        if (!join(path, d->path, ie->name))
            continue;
        bool is_dir = ie->mask & IN_ISDIR;
        json_t *ev = json_pack("{s:s, s:s, s:b}", "type", type, "path", path, "is_dir", is_dir);
        if (!ev)
            continue; /* not UTF-8 */
        json_array_append_new(events, ev);
        budget += strlen(path) * 6 + 64;
        if (is_dir && w->recursive && (ie->mask & (IN_CREATE | IN_MOVED_TO)))
            add_new_dir(a, w, d, ie->name, path);
        if (budget > WATCH_FRAME_BUDGET)
            flush(a, w, &events, &budget, NULL);
    }
    flush(a, w, &events, &budget, end);
    json_decref(events);
    if (end)
        watch_free(a, w);
}

void watch_handle(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    json_t *jrec = json_object_get(req, "recursive");
    if (jrec && !json_is_boolean(jrec) && !json_is_null(jrec)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "recursive must be a boolean");
        return;
    }
    int count = 0;
    for (struct file_watch *o = a->file_watches; o; o = o->next)
        count++;
    if (watch_find(a, h->req_id)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "request %u is already in progress", h->req_id);
        return;
    }
    if (count >= AGENT_MAX_FILE_WATCHES) {
        agent_send_error(a, h->req_id, PROTO_ERR_BUSY, "too many watches (limit %d)", AGENT_MAX_FILE_WATCHES);
        return;
    }
    char norm[PATHPOLICY_NORM_MAX];
    struct stat st;
    cleanup_fd int fd = pathpolicy_open_read(a, h->req_id, json_object_get(req, "path"), PATHPOLICY_DIR, norm, &st);
    if (fd < 0)
        return;
    struct file_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        agent_send_error(a, h->req_id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    w->req_id = h->req_id;
    w->recursive = json_is_true(jrec);
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->next = a->file_watches;
    a->file_watches = w;
    int r = w->ifd < 0 ? -errno : add_dir(w, fd, norm);
    if (r == 0) {
        w->root_wd = w->dirs[0].wd;
        if (w->recursive)
            r = add_tree(a, w, fd, norm, 1);
    }
    if (r == 0) {
        int hd = ev_watch(a, w->ifd, POLLIN, on_inotify, w);
        r = hd < 0 ? hd : 0;
        w->ev_handle = hd > 0 ? hd : 0; /* ev_watch's handles are positive */
    }
    if (r < 0) {
        if (r == -ENOSPC)
            agent_send_error(a, h->req_id, PROTO_ERR_BUSY, "%s: too many directories to watch (limit %d, or the "
                             "kernel's inotify limit)", norm, WATCH_MAX_DIRS);
        else
            agent_send_errno(a, h->req_id, -r, "watch", norm);
        watch_free(a, w);
        return;
    }
    /* no END: FILE_EVENT frames follow */
    json_t *ok = json_pack("{s:s, s:b, s:i}", "path", norm, "recursive", w->recursive, "dirs", w->n);
    agent_send_json(a, PROTO_OK, 0, h->req_id, ok);
    json_decref(ok);
}

bool watch_handle_peer_frame(struct agent *a, const struct proto_hdr *h)
{
    struct file_watch *w = watch_find(a, h->req_id);
    if (!w)
        return false;
    if (h->type == PROTO_ERROR) {
        log_debug("watch %u cancelled by the daemon", h->req_id);
        watch_free(a, w);
    }
    return true;
}
