/* files.c - FILE_PUT / GET / DELETE / MKDIR inside the sandbox root, and
 * the dispatch of every file request (LIST, STAT, RENAME are files_meta.c;
 * what they say of a file, fileinfo.c; WATCH is watch.c).
 *
 * Which paths are accepted, and how they are opened inside --root, is
 * pathpolicy.c: this file gets directory and file descriptors from it and
 * works on the last component with *at() calls that never follow a
 * symlink at the leaf.
 *
 * Uploads go to a hidden temporary file in the target directory and are
 * renamed into place on END, so a failed upload leaves nothing behind; if
 * the daemon passed the client's sha256, the bytes received must have it,
 * or the upload fails (digest_mismatch) and nothing is renamed.
 * Downloads are verified end to end: the agent first hashes the file (in
 * slices, from the loop, so a big file does not stall it), announces size
 * and sha256 in its OK, and then sends exactly that many bytes, hashing
 * them again; a file changed meanwhile (shorter, or other bytes) ends the
 * download with an ERROR instead of its last chunk, so the client gets a
 * short body, never a whole-looking one that does not match its digest.
 * Downloads are streamed one PROTO_DATA_CHUNK per loop iteration, so a big
 * download does not stop the loop from serving output and timeouts, and
 * only while the daemon has acknowledged all but PROTO_GET_WINDOW bytes
 * (FILE_ACK): a download client that stalls then parks its download here
 * instead of filling the control stream, which every other request of the
 * sandbox shares.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_*: the agent is static; EVP would pull in every provider */
#include <openssl/sha.h>

#include "agent.h"
#include "files_impl.h"
#include "log.h"
#include "pathpolicy.h"
#include "util.h"

#define FILES_HASH_SLICES 4 /* PROTO_DATA_CHUNKs hashed per loop turn before a download starts */


struct file_op {
    struct file_op *next;
    uint32_t req_id;
    bool is_put;
    bool failed;   /* put: ERROR already sent; swallow data until END */
    int fd;        /* put: the temporary file; get: the source */
    int dir_fd;    /* put: the target directory */
    char tmp_name[64];
    char *leaf;    /* put: final name in dir_fd */
    char *path;    /* put: normalised path for the reply */
    uint64_t size; /* put: bytes written; get: bytes sent */
    uint64_t expect; /* get: the size announced (what the first pass hashed) */
    uint64_t acked;  /* get: bytes the daemon has acknowledged (<= size) */
    mode_t mode;     /* get: the file's permission bits, for the OK */
    bool hashing;    /* get: first pass, before the OK */
    bool check_sha;  /* put: the client gave a sha256 */
    char sha_hex[65]; /* put: the client's; get: the one announced */
    SHA256_CTX sha;  /* put: of the bytes received; get: of the pass under way */
};

static void sha_hex(SHA256_CTX *c, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Final(md, c);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}


/* ---- the op list ------------------------------------------------------------ */

static int file_op_count(struct agent *a)
{
    int n = 0;
    for (struct file_op *o = a->file_ops; o; o = o->next)
        n++;
    return n;
}

static struct file_op *file_op_find(struct agent *a, uint32_t req_id)
{
    for (struct file_op *o = a->file_ops; o; o = o->next)
        if (o->req_id == req_id)
            return o;
    return NULL;
}

/* Remove from the list, close, and for an unfinished upload delete the
 * temporary file. */
static void file_op_free(struct agent *a, struct file_op *op)
{
    for (struct file_op **pp = &a->file_ops; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    }
    if (op->fd >= 0)
        close(op->fd);
    if (op->is_put && op->tmp_name[0] && op->dir_fd >= 0)
        (void)unlinkat(op->dir_fd, op->tmp_name, 0);
    if (op->dir_fd >= 0)
        close(op->dir_fd);
    free(op->leaf);
    free(op->path);
    free(op);
}

void files_free_all(struct agent *a)
{
    while (a->file_ops)
        file_op_free(a, a->file_ops);
}

static struct file_op *file_op_new(struct agent *a, uint32_t req_id, bool is_put)
{
    struct file_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->req_id = req_id;
    op->is_put = is_put;
    op->fd = op->dir_fd = -1;
    op->next = a->file_ops;
    a->file_ops = op;
    return op;
}

/* ---- FILE_PUT ---------------------------------------------------------------- */

/* The bytes received do not have the client's digest: -EBADMSG. */
static int put_finish(struct agent *a, struct file_op *op)
{
    if (op->check_sha) {
        char got[65];
        sha_hex(&op->sha, got);
        if (strcmp(got, op->sha_hex) != 0)
            return -EBADMSG;
    }
    if (close(steal_fd(&op->fd)) < 0) /* tmpfs reports ENOSPC at write, but be sure */
        return -errno;
    if (renameat(op->dir_fd, op->tmp_name, op->dir_fd, op->leaf) < 0)
        return -errno;
    op->tmp_name[0] = '\0'; /* renamed: nothing to clean up */
    agent_send_ok(a, op->req_id, json_pack("{s:s, s:I}", "path", op->path, "size", (json_int_t)op->size));
    return 0;
}

/* Clean up first, then answer: whoever gets the ERROR may look at the
 * directory at once and must not find the temporary file. */
static void put_fail(struct agent *a, struct file_op *op, int err, const char *what)
{
    op->failed = true;
    if (op->fd >= 0)
        close(steal_fd(&op->fd));
    if (op->tmp_name[0])
        (void)unlinkat(op->dir_fd, op->tmp_name, 0);
    op->tmp_name[0] = '\0';
    if (err == EBADMSG)
        agent_send_error(a, op->req_id, PROTO_ERR_DIGEST, "%s: the bytes received do not have the sha256 given; "
                         "nothing was written", op->path);
    else
        agent_send_errno(a, op->req_id, err, what, op->path);
}

static void handle_put(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    json_t *jmode = json_object_get(req, "mode");
    if (jmode && !json_is_null(jmode) && (!json_is_integer(jmode) || json_integer_value(jmode) < 0 || json_integer_value(jmode) > 07777)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "mode must be an integer between 0 and 07777");
        return;
    }
    /* no setuid/setgid/sticky bits on user files */
    mode_t mode = json_is_integer(jmode) ? (mode_t)(json_integer_value(jmode) & 0777) : 0644;
    char norm[PATHPOLICY_NORM_MAX];
    const char *leaf;
    cleanup_fd int dfd = pathpolicy_open_write_parent(a, h->req_id, json_object_get(req, "path"), true, norm, &leaf);
    if (dfd < 0)
        return;
    if (pathpolicy_is_writable_root(norm)) {
        agent_send_error(a, h->req_id, PROTO_ERR_IS_DIR, "%s is a directory", norm);
        return;
    }
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        agent_send_error(a, h->req_id, PROTO_ERR_IS_DIR, "%s is a directory", norm);
        return;
    }
    struct file_op *op = file_op_new(a, h->req_id, true);
    if (!op || !(op->leaf = strdup(leaf)) || !(op->path = strdup(norm))) {
        if (op)
            file_op_free(a, op);
        agent_send_error(a, h->req_id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    json_t *jsha = json_object_get(req, "sha256");
    if (json_is_string(jsha)) {
        const char *hx = json_string_value(jsha);
        if (strlen(hx) != 64 || strspn(hx, "0123456789abcdef") != 64) {
            file_op_free(a, op);
            agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "sha256 must be 64 lower-case hex digits");
            return;
        }
        memcpy(op->sha_hex, hx, 65);
        op->check_sha = true;
        SHA256_Init(&op->sha);
    }
    op->dir_fd = steal_fd(&dfd);
    char rnd[17];
    if (random_hex(rnd, 8) < 0)
        snprintf(rnd, sizeof(rnd), "%u", h->req_id);
    snprintf(op->tmp_name, sizeof(op->tmp_name), FILES_TMP_PREFIX "%s", rnd);
    op->fd = openat(op->dir_fd, op->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (op->fd < 0) {
        op->tmp_name[0] = '\0';
        put_fail(a, op, errno, "create");
        file_op_free(a, op);
        return;
    }
    if (fchown(op->fd, AGENT_USER_UID, AGENT_USER_GID) < 0 || fchmod(op->fd, mode) < 0) {
        put_fail(a, op, errno, "chown/chmod");
        file_op_free(a, op);
        return;
    }
    if (h->flags & PROTO_F_END) { /* an empty file in one frame */
        int r = put_finish(a, op);
        if (r < 0)
            put_fail(a, op, -r, "rename");
        file_op_free(a, op);
    }
}

static void put_data(struct agent *a, struct file_op *op, const struct proto_hdr *h, const uint8_t *payload)
{
    if (h->type == PROTO_ERROR) {
        log_debug("upload %u aborted by the daemon", h->req_id);
        file_op_free(a, op); /* deletes the temporary file */
        return;
    }
    if (!op->failed && h->len > 0) {
        int r = write_all(op->fd, payload, h->len);
        if (r < 0) {
            put_fail(a, op, -r, "write");
        } else {
            op->size += h->len;
            if (op->check_sha)
                SHA256_Update(&op->sha, payload, h->len);
        }
    }
    if (h->flags & PROTO_F_END) {
        if (!op->failed) {
            int r = put_finish(a, op);
            if (r < 0)
                put_fail(a, op, -r, "rename");
        }
        file_op_free(a, op);
    }
}

/* ---- FILE_GET ------------------------------------------------------------------ */

static void handle_get(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    char norm[PATHPOLICY_NORM_MAX];
    struct stat st;
    cleanup_fd int fd = pathpolicy_open_read(a, h->req_id, json_object_get(req, "path"), PATHPOLICY_FILE, norm, &st);
    if (fd < 0)
        return;
    struct file_op *op = file_op_new(a, h->req_id, false);
    if (!op) {
        agent_send_error(a, h->req_id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    op->fd = steal_fd(&fd);
    op->hashing = true; /* the OK follows the first pass (get_hash_slice) */
    op->mode = st.st_mode & 07777;
    SHA256_Init(&op->sha);
}

/* Some of the first pass; once it reaches the end, announce size and
 * digest (OK without END: FILE_DATA follows) and start the second. false
 * if the download failed (ERROR sent). */
static bool get_hash_slice(struct agent *a, struct file_op *op)
{
    static uint8_t buf[PROTO_DATA_CHUNK];
    for (int i = 0; i < FILES_HASH_SLICES; i++) {
        ssize_t n = pread(op->fd, buf, sizeof(buf), (off_t)op->expect);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return true;
            agent_send_errno(a, op->req_id, errno, "read", "file");
            return false;
        }
        if (n > 0) {
            SHA256_Update(&op->sha, buf, (size_t)n);
            op->expect += (uint64_t)n;
            continue;
        }
        sha_hex(&op->sha, op->sha_hex);
        op->hashing = false;
        SHA256_Init(&op->sha);
        json_t *ok = json_pack("{s:I, s:i, s:s}", "size", (json_int_t)op->expect, "mode", (int)op->mode, "sha256",
                               op->sha_hex);
        agent_send_json(a, PROTO_OK, 0, op->req_id, ok);
        json_decref(ok);
        return true;
    }
    return true;
}

/* How many more bytes the window allows; 0 while the daemon is behind. */
static size_t get_room(const struct file_op *op)
{
    uint64_t in_flight = op->size - op->acked;
    if (in_flight >= PROTO_GET_WINDOW)
        return 0;
    uint64_t room = PROTO_GET_WINDOW - in_flight;
    return room < PROTO_DATA_CHUNK ? (size_t)room : PROTO_DATA_CHUNK;
}

/* One chunk of at most `room` bytes of the second pass; true if the
 * download continues. Exactly the announced size is sent (bytes appended
 * since are not: the digest does not cover them); the last chunk goes only
 * if the whole has the digest announced. */
static bool get_send_chunk(struct agent *a, struct file_op *op, size_t room)
{
    /* static: one 256 KiB buffer reused by every download (single thread) */
    static uint8_t buf[PROTO_DATA_CHUNK];
    uint64_t left = op->expect - op->size;
    size_t want = left < room ? (size_t)left : room;
    ssize_t n = want ? read(op->fd, buf, want) : 0;
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return true;
        agent_send_errno(a, op->req_id, errno, "read", "file");
        return false;
    }
    if (n == 0 && left > 0) {
        agent_send_error(a, op->req_id, PROTO_ERR_INTERNAL, "the file shrank during the download");
        return false;
    }
    SHA256_Update(&op->sha, buf, (size_t)n);
    bool end = op->size + (uint64_t)n == op->expect;
    if (end) {
        char got[65];
        sha_hex(&op->sha, got);
        if (strcmp(got, op->sha_hex) != 0) {
            agent_send_error(a, op->req_id, PROTO_ERR_INTERNAL, "the file changed during the download");
            return false;
        }
    }
    agent_send(a, PROTO_FILE_DATA, end ? PROTO_F_END : 0, op->req_id, buf, (size_t)n);
    op->size += (uint64_t)n;
    return !end;
}

/* The loop's idle hook: send the next chunk of every download the window
 * allows; true if one can send more at once (the loop must not sleep). */
static bool files_pump_downloads(struct agent *a, void *ctx)
{
    (void)ctx;
    bool more = false;
    struct file_op *op = a->file_ops;
    while (op && !a->quit) {
        struct file_op *next = op->next;
        if (!op->is_put && op->hashing) {
            if (!get_hash_slice(a, op))
                file_op_free(a, op);
            else
                more = true;
            op = next;
            continue;
        }
        size_t room = op->is_put ? 0 : get_room(op);
        if (room > 0) {
            if (!get_send_chunk(a, op, room))
                file_op_free(a, op);
            else if (get_room(op) > 0)
                more = true; /* a download waiting for an ACK is not "more": the loop may sleep */
        }
        op = next;
    }
    return more;
}

/* FILE_ACK {"bytes":n}: the daemon handed n more bytes to its client. A
 * malformed one is only logged: it comes from the daemon, which is trusted,
 * and answering it would put a frame on a request the daemon may be reading. */
static void get_ack(struct file_op *op, const struct proto_hdr *h, const uint8_t *payload)
{
    json_t *j = json_loadb((const char *)payload, h->len, 0, NULL);
    json_t *jb = json_object_get(j, "bytes");
    if (!json_is_integer(jb) || json_integer_value(jb) < 0) {
        log_warn("FILE_ACK for req %u without a byte count; ignored", h->req_id);
        json_decref(j);
        return;
    }
    uint64_t n = (uint64_t)json_integer_value(jb);
    json_decref(j);
    /* never beyond what was sent, so a confused daemon cannot open the
     * window wider than PROTO_GET_WINDOW */
    op->acked = n > op->size - op->acked ? op->size : op->acked + n;
}

void files_handle_peer_frame(struct agent *a, const struct proto_hdr *h, const uint8_t *payload)
{
    struct file_op *op = file_op_find(a, h->req_id);
    if (!op) {
        log_debug("dropping %s for unknown req %u", proto_type_name(h->type), h->req_id);
        return;
    }
    if (op->is_put) {
        if (h->type == PROTO_FILE_DATA || h->type == PROTO_ERROR)
            put_data(a, op, h, payload);
        else
            log_debug("dropping %s for upload %u", proto_type_name(h->type), h->req_id);
        return;
    }
    if (h->type == PROTO_FILE_ACK) {
        get_ack(op, h, payload);
    } else if (h->type == PROTO_ERROR) {
        log_debug("download %u cancelled by the daemon after %llu bytes", h->req_id, (unsigned long long)op->size);
        file_op_free(a, op); /* closes the file; later ACKs find nothing */
    } else {
        log_debug("dropping %s for download %u", proto_type_name(h->type), h->req_id);
    }
}

/* ---- FILE_DELETE ---------------------------------------------------------------- */

static void handle_delete(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    json_t *jrec = json_object_get(req, "recursive");
    if (jrec && !json_is_boolean(jrec) && !json_is_null(jrec)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "recursive must be a boolean");
        return;
    }
    char norm[PATHPOLICY_NORM_MAX];
    const char *leaf;
    cleanup_fd int dfd = pathpolicy_open_write_parent(a, h->req_id, json_object_get(req, "path"), false, norm, &leaf);
    if (dfd < 0)
        return;
    if (pathpolicy_is_writable_root(norm)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "%s itself cannot be deleted", norm);
        return;
    }
    struct stat st;
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        agent_send_errno(a, h->req_id, errno, "stat", norm);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (json_is_true(jrec)) {
            int r = files_remove_tree_contents(dfd, leaf, 0);
            if (r < 0) {
                agent_send_errno(a, h->req_id, -r, "delete", norm);
                return;
            }
        }
        if (unlinkat(dfd, leaf, AT_REMOVEDIR) < 0) {
            if (errno == ENOTEMPTY || errno == EEXIST)
                agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "directory %s is not empty (set recursive)", norm);
            else
                agent_send_errno(a, h->req_id, errno, "rmdir", norm);
            return;
        }
    } else if (unlinkat(dfd, leaf, 0) < 0) {
        agent_send_errno(a, h->req_id, errno, "unlink", norm);
        return;
    }
    agent_send_ok(a, h->req_id, NULL);
}

/* ---- FILE_MKDIR ----------------------------------------------------------------- */

/* {"path","created"}: whether this call made it (E2B's make_dir answer). */
static json_t *mkdir_reply(const char *norm, bool created)
{
    return json_pack("{s:s, s:b}", "path", norm, "created", created);
}

static void handle_mkdir(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    char norm[PATHPOLICY_NORM_MAX];
    const char *leaf, *msg;
    json_t *jpath = json_object_get(req, "path");
    /* before the parent is opened: the parent of /home/user is not writable */
    if (json_is_string(jpath) && path_normalize(json_string_value(jpath), json_string_length(jpath), norm, &msg) == 0 &&
        pathpolicy_is_writable_root(norm)) {
        agent_send_ok(a, h->req_id, mkdir_reply(norm, false)); /* exists by construction */
        return;
    }
    cleanup_fd int dfd = pathpolicy_open_write_parent(a, h->req_id, jpath, true, norm, &leaf);
    if (dfd < 0)
        return;
    if (mkdirat(dfd, leaf, 0755) < 0) {
        int e = errno;
        struct stat st;
        if (e == EEXIST && fstatat(dfd, leaf, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
            agent_send_ok(a, h->req_id, mkdir_reply(norm, false)); /* mkdir -p semantics */
            return;
        }
        if (e == EEXIST) {
            agent_send_error(a, h->req_id, PROTO_ERR_EXISTS, "%s exists and is not a directory", norm);
            return;
        }
        agent_send_errno(a, h->req_id, e, "mkdir", norm);
        return;
    }
    if (fchownat(dfd, leaf, AGENT_USER_UID, AGENT_USER_GID, AT_SYMLINK_NOFOLLOW) < 0) {
        agent_send_errno(a, h->req_id, errno, "chown", norm);
        return;
    }
    agent_send_ok(a, h->req_id, mkdir_reply(norm, true));
}

/* ---- dispatch -------------------------------------------------------------------- */

void files_handle(struct agent *a, const struct proto_hdr *h, json_t *req)
{
    if (file_op_find(a, h->req_id)) {
        agent_send_error(a, h->req_id, PROTO_ERR_INVALID, "request %u is already in progress", h->req_id);
        return;
    }
    if ((h->type == PROTO_FILE_PUT || h->type == PROTO_FILE_GET) && file_op_count(a) >= AGENT_MAX_FILE_OPS) {
        agent_send_error(a, h->req_id, PROTO_ERR_BUSY, "too many transfers in progress (limit %d)", AGENT_MAX_FILE_OPS);
        return;
    }
    switch (h->type) {
    case PROTO_FILE_PUT: handle_put(a, h, req); break;
    case PROTO_FILE_GET: handle_get(a, h, req); break;
    case PROTO_FILE_LIST: files_handle_list(a, h, req); break;
    case PROTO_FILE_DELETE: handle_delete(a, h, req); break;
    case PROTO_FILE_MKDIR: handle_mkdir(a, h, req); break;
    case PROTO_FILE_STAT: files_handle_stat(a, h, req); break;
    case PROTO_FILE_RENAME: files_handle_rename(a, h, req); break;
    default: break;
    }
}

int files_init(struct agent *a)
{
    return ev_idle_add(a, files_pump_downloads, NULL);
}
