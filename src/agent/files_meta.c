/* files_meta.c - FILE_LIST (with a depth), FILE_STAT and FILE_RENAME: what
 * is in a directory, what a path is, and a move. The path policy is
 * pathpolicy.c's; the info of one file, fileinfo.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "files_impl.h"
#include "pathpolicy.h"
#include "util.h"

#define FILES_LIST_BUDGET (PROTO_MAX_PAYLOAD - 64 * 1024)
#define FILES_LIST_MAX_DEPTH 64 /* LIST's depth: deep enough for any tree a user lists, bounded for the stack */

/* One LIST: the entries so far, and what is left of the reply's budget. */
struct list_walk {
    struct fileinfo_names names;
    json_t *entries;
    size_t budget;
    bool truncated;
};

/* "/a" + "b" -> "/a/b", "/" + "b" -> "/b"; false if too long. */
static bool join_path(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATHPOLICY_NORM_MAX, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
    return n > 0 && n < PATHPOLICY_NORM_MAX;
}

/* The entries of dirfd (reached as dir), sorted by name, each followed by
 * its own entries while depth allows: pre-order, so a tree reads top down.
 * Directories are entered with O_NOFOLLOW (a symlink is listed, never
 * walked into) and never into a kernel interface (pathpolicy_may_walk). */
static int list_dir(struct agent *a, struct list_walk *w, int dirfd, const char *dir, int depth)
{
    cleanup_strv char **names = NULL;
    int n = files_read_dir_names(dirfd, &names);
    if (n < 0)
        return n;
    for (int i = 0; i < n && !w->truncated; i++) {
        if (strncmp(names[i], FILES_TMP_PREFIX, strlen(FILES_TMP_PREFIX)) == 0)
            continue; /* an upload in flight, not a file yet */
        char path[PATHPOLICY_NORM_MAX];
        if (!join_path(path, dir, names[i]))
            continue;
        json_t *e = fileinfo_json(&w->names, dirfd, names[i], path);
        if (!e)
            continue; /* deleted meanwhile, or not UTF-8: cannot be represented in JSON */
        /* exactly what it adds to the reply (agent_send_json's compact form, and a comma) */
        size_t cost = json_dumpb(e, NULL, 0, JSON_COMPACT) + 1;
        if (w->budget + cost > FILES_LIST_BUDGET) {
            json_decref(e);
            w->truncated = true;
            break;
        }
        w->budget += cost;
        bool is_dir = strcmp(json_string_value(json_object_get(e, "type")), "dir") == 0;
        json_array_append_new(w->entries, e);
        if (!is_dir || depth <= 1)
            continue;
        cleanup_fd int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || !pathpolicy_may_walk(a, sub, path))
            continue; /* replaced meanwhile, unreadable, or /proc and its kind: listed, not entered */
        (void)list_dir(a, w, sub, path, depth - 1); /* a subdirectory that cannot be read is listed empty */
    }
    return 0;
}

void files_handle_list(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    json_t *jdepth = json_object_get(req, "depth");
    if (jdepth && !json_is_null(jdepth) &&
        (!json_is_integer(jdepth) || json_integer_value(jdepth) < 1 || json_integer_value(jdepth) > FILES_LIST_MAX_DEPTH)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "depth must be an integer from 1 to %d", FILES_LIST_MAX_DEPTH);
        return;
    }
    int depth = json_is_integer(jdepth) ? (int)json_integer_value(jdepth) : 1;
    char norm[PATHPOLICY_NORM_MAX];
    struct stat dst;
    cleanup_fd int fd = pathpolicy_open_read(a, h->req_id, json_object_get(req, "path"), PATHPOLICY_DIR, norm, &dst);
    if (fd < 0)
        return;
    struct list_walk w = {.names = {.a = a}, .entries = json_array()};
    int r = list_dir(a, &w, fd, norm, depth);
    if (r < 0) {
        json_decref(w.entries);
        agent_send_errno(a, h->req_id, -r, "readdir", norm);
        return;
    }
    json_t *reply = json_pack("{s:s, s:o}", "path", norm, "entries", w.entries);
    if (!reply) { /* norm not UTF-8 */
        reply = json_pack("{s:s, s:o}", "path", "", "entries", w.entries);
    }
    if (w.truncated)
        json_object_set_new(reply, "truncated", json_true());
    agent_send_ok(a, h->req_id, reply);
}

/* ---- FILE_STAT ------------------------------------------------------------------ */

void files_handle_stat(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    char norm[PATHPOLICY_NORM_MAX];
    const char *leaf;
    cleanup_fd int dfd = pathpolicy_open_read_parent(a, h->req_id, json_object_get(req, "path"), norm, &leaf);
    if (dfd < 0)
        return;
    struct fileinfo_names names = {.a = a};
    json_t *info = fileinfo_json(&names, dfd, leaf, norm);
    if (!info) {
        agent_send_errno(a, h->req_id, errno, "stat", norm);
        return;
    }
    agent_send_ok(a, h->req_id, info);
}

/* ---- FILE_RENAME ---------------------------------------------------------------- */

/* /tmp, /data and /home/user are separate mounts: between them a move is a
 * copy and a delete (files_copy.c). Replies, either way. */
static void move_across(struct agent *a, const struct proto_hdr *h, int sfd, const char *sleaf, const char *src,
                        int dfd, const char *dleaf, const char *dst, bool overwrite)
{
    int err = 0;
    int r = files_move_across(sfd, sleaf, dfd, dleaf, overwrite, &err);
    if (r == -EEXIST && !overwrite) {
        agent_send_error(a, h->req_id, PROTO_ERR_EXISTS, "%s exists (set overwrite to replace it)", dst);
    } else if (r == -EEXIST || r == -ENOTEMPTY) {
        agent_send_error(a, h->req_id, PROTO_ERR_EXISTS, "%s is a directory that is not empty", dst);
    } else if (r == -EOPNOTSUPP) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "%s is not a file, symlink or directory: it cannot be "
                         "copied to another mount", src);
    } else if (r < 0) {
        agent_send_errno(a, h->req_id, -r, "copy", src); /* nothing moved */
    } else if (r == 1) {
        agent_send_error(a, h->req_id, PROTO_ERR_INTERNAL, "%s was copied to %s, but removing it failed: %s", src,
                         dst, strerror(err));
    } else {
        struct fileinfo_names names = {.a = a};
        json_t *info = fileinfo_json(&names, dfd, dleaf, dst);
        if (info)
            agent_send_ok(a, h->req_id, info);
        else
            agent_send_errno(a, h->req_id, errno, "stat", dst);
    }
}

/* Both ends are writes (pathpolicy_open_write_parent): a file can be moved
 * only from and into the writable trees, and neither a symlink on the way
 * nor the leaf itself (renameat moves a link, it does not follow it) leads
 * elsewhere. The destination's missing parents are made, as for an upload.
 * An existing destination is refused unless overwrite (RENAME_NOREPLACE:
 * atomic, no window between a check and the rename). Between mounts the
 * move is a copy (move_across). */
void files_handle_rename(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    json_t *jover = json_object_get(req, "overwrite");
    if (jover && !json_is_boolean(jover) && !json_is_null(jover)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "overwrite must be a boolean");
        return;
    }
    json_t *jto = json_object_get(req, "to");
    if (!json_is_string(jto)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "to (the destination) must be a string");
        return;
    }
    char src[PATHPOLICY_NORM_MAX], dst[PATHPOLICY_NORM_MAX];
    const char *sleaf, *dleaf;
    cleanup_fd int sfd = pathpolicy_open_write_parent(a, h->req_id, json_object_get(req, "path"), false, src, &sleaf);
    if (sfd < 0)
        return;
    if (pathpolicy_is_writable_root(src)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "%s itself cannot be moved", src);
        return;
    }
    struct stat st;
    if (fstatat(sfd, sleaf, &st, AT_SYMLINK_NOFOLLOW) < 0) { /* before any parent of the destination is made */
        agent_send_errno(a, h->req_id, errno, "stat", src);
        return;
    }
    cleanup_fd int dfd = pathpolicy_open_write_parent(a, h->req_id, jto, true, dst, &dleaf);
    if (dfd < 0)
        return;
    if (pathpolicy_is_writable_root(dst)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "%s itself cannot be replaced", dst);
        return;
    }
    if (strcmp(src, dst) != 0 && renameat2(sfd, sleaf, dfd, dleaf, json_is_true(jover) ? 0 : RENAME_NOREPLACE) < 0) {
        int e = errno;
        if (e == EEXIST && !json_is_true(jover))
            agent_send_error(a, h->req_id, PROTO_ERR_EXISTS, "%s exists (set overwrite to replace it)", dst);
        else if (e == EEXIST || e == ENOTEMPTY)
            agent_send_error(a, h->req_id, PROTO_ERR_EXISTS, "%s is a directory that is not empty", dst);
        else if (e == EXDEV)
            move_across(a, h, sfd, sleaf, src, dfd, dleaf, dst, json_is_true(jover));
        else if (e == EINVAL)
            agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "cannot move %s into itself (%s)", src, dst);
        else
            agent_send_errno(a, h->req_id, e, "rename", src);
        return;
    }
    struct fileinfo_names names = {.a = a};
    json_t *info = fileinfo_json(&names, dfd, dleaf, dst);
    if (!info) {
        agent_send_errno(a, h->req_id, errno, "stat", dst);
        return;
    }
    agent_send_ok(a, h->req_id, info);
}
