/* rootfs.c - what a template's root holds: its /usr and a synthetic /etc.
 *
 * The `host` template reuses the host's /usr (read-only) and gets an /etc of
 * its own: a handful of generated files that describe the sandbox (its users,
 * its name, no DNS), plus the few host files that programs in /usr need to
 * work (the dynamic linker cache, Debian alternatives symlinks, Python and
 * matplotlib configuration). Nothing else of the host's /etc is visible: no
 * shadow, no ssh keys, no resolver configuration, no machine-id.
 *
 * None of it is the host's inode: the /usr tree and /etc's directories are
 * per-sandbox overlays (layers.c), and /etc's single files are copies,
 * read by the parent and written into the sandbox's /etc tmpfs by the child,
 * so a lock or an inotify watch on them stays in the one sandbox.
 *
 * A template with a rootfs directory gets the same treatment from that
 * directory's usr/ and etc/.
 */
#include "jail.h"

#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox_etc.h"
#include "util.h"

static int add_file(struct jail_plan *p, const char *name, const char *data, size_t len)
{
    if (p->n_etc_files >= JAIL_MAX_ETC_FILES)
        return -E2BIG;
    struct jail_etc_file *f = &p->etc_files[p->n_etc_files++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->data = data;
    f->len = len;
    return 0;
}

/* A generated file whose text the plan owns (freed by rootfs_release). */
static int add_file_printf(struct jail_plan *p, const char *name, const char *fmt, const char *arg)
{
    char *text = NULL;
    int n = asprintf(&text, fmt, arg);
    if (n < 0)
        return -ENOMEM;
    p->etc_heap[p->n_etc_files] = text;
    int r = add_file(p, name, text, (size_t)n);
    if (r < 0) {
        free(text);
        p->etc_heap[p->n_etc_files] = NULL;
    }
    return r;
}

int rootfs_copy_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return jail_err(err, errlen, -errno, "open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return jail_err(err, errlen, -errno, "fstat %s", path);
    if (!S_ISREG(st.st_mode))
        return jail_err(err, errlen, -EINVAL, "%s is not a regular file", path);
    if (st.st_size > (off_t)JAIL_MAX_COPY_BYTES)
        return jail_err(err, errlen, -EFBIG, "%s is larger than %u bytes: too large to copy into a sandbox", path,
                        JAIL_MAX_COPY_BYTES);
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return jail_err(err, errlen, -ENOMEM, "copy %s", path);
    size_t off = 0;
    while (off < cap) { /* a file that shrinks meanwhile is copied as far as it goes */
        ssize_t n = read(fd, buf + off, cap - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            free(buf);
            return jail_err(err, errlen, e, "read %s", path);
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    *data = buf;
    *len = off;
    return 0;
}

static int add_host_file(struct jail_plan *p, const char *src, const char *name, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int r = rootfs_copy_file(src, &data, &len, err, errlen);
    if (r < 0)
        return r;
    p->etc_heap[p->n_etc_files] = data;
    if ((r = add_file(p, name, data, len)) < 0) {
        free(data);
        p->etc_heap[p->n_etc_files] = NULL;
        return jail_err(err, errlen, r, "copy /etc/%s: too many files", name);
    }
    return 0;
}

static int add_host_entry(struct jail_plan *p, const struct jail_layers *l, const char *root, const char *name,
                          char *err, size_t errlen)
{
    char src[PATH_MAX], target[64];
    struct stat st;
    snprintf(src, sizeof(src), "%s/etc/%s", root, name);
    if (lstat(src, &st) < 0)
        return 0; /* optional: absent on this host */
    if (S_ISREG(st.st_mode))
        return add_host_file(p, src, name, err, errlen);
    if (!S_ISDIR(st.st_mode) || p->n_etc_binds >= JAIL_MAX_ETC_BINDS)
        return 0;
    if (snprintf(target, sizeof(target), "etc/%s", name) >= (int)sizeof(target))
        return 0;
    int r = layers_tree_ro(l, src, &p->etc_binds[p->n_etc_binds], target, err, errlen);
    if (r < 0)
        return r;
    p->n_etc_binds++;
    return 0;
}

/* /etc/python3, /etc/python3.11, ...: whichever the template ships. */
static int add_python_binds(struct jail_plan *p, const struct jail_layers *l, const char *root, char *err,
                            size_t errlen)
{
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof(pattern), "%s/etc/python3*", root);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0)
        return 0;
    int r = 0;
    for (size_t i = 0; r == 0 && i < g.gl_pathc; i++)
        r = add_host_entry(p, l, root, strrchr(g.gl_pathv[i], '/') + 1, err, errlen);
    globfree(&g);
    return r;
}

/* /etc/localtime is usually a symlink into /usr/share/zoneinfo and
 * /etc/os-release one to ../usr/lib/os-release, both of which the sandbox's
 * /usr has: recreate the link. A plain file is copied instead; a link too
 * long to record is left out like an absent file. */
static int add_host_link(struct jail_plan *p, const struct jail_layers *l, const char *root, const char *name,
                         char *err, size_t errlen)
{
    char src[PATH_MAX];
    struct stat st;
    snprintf(src, sizeof(src), "%s/etc/%s", root, name);
    if (lstat(src, &st) < 0)
        return 0;
    if (!S_ISLNK(st.st_mode))
        return add_host_entry(p, l, root, name, err, errlen);
    if (p->n_etc_links >= JAIL_MAX_ETC_LINKS)
        return jail_err(err, errlen, -E2BIG, "link /etc/%s: too many links", name);
    struct jail_etc_link *k = &p->etc_links[p->n_etc_links];
    ssize_t n = readlink(src, k->target, sizeof(k->target));
    if (n < 0)
        return jail_err(err, errlen, -errno, "readlink %s", src);
    if ((size_t)n >= sizeof(k->target))
        return 0;
    k->target[n] = '\0';
    snprintf(k->name, sizeof(k->name), "%s", name);
    p->n_etc_links++;
    return 0;
}

int rootfs_prepare(struct jail_plan *p, const struct sandbox_spec *spec, const struct jail_layers *l, char *err,
                   size_t errlen)
{
    const char *root = spec->tmpl && spec->tmpl->rootfs ? spec->tmpl->rootfs : "";
    char usr[PATH_MAX];
    snprintf(usr, sizeof(usr), "%s/usr", root);
    int r = layers_tree_ro(l, usr, &p->usr, "usr", err, errlen);
    if (r < 0 || (r = layers_dev(l, &p->dev, err, errlen)) < 0)
        return r;

    if ((r = add_file(p, "passwd", sandbox_etc_passwd, strlen(sandbox_etc_passwd))) < 0 ||
        (r = add_file(p, "group", sandbox_etc_group, strlen(sandbox_etc_group))) < 0 ||
        (r = add_file(p, "nsswitch.conf", sandbox_etc_nsswitch, strlen(sandbox_etc_nsswitch))) < 0 ||
        (r = add_file(p, "resolv.conf", "", 0)) < 0 ||
        (r = add_file_printf(p, "hosts", sandbox_etc_hosts_fmt, spec->hostname)) < 0 ||
        (r = add_file_printf(p, "hostname", sandbox_etc_hostname_fmt, spec->hostname)) < 0)
        return jail_err(err, errlen, r, "generate /etc");

    for (size_t i = 0; i < sandbox_etc_n_host_files; i++)
        if ((r = add_host_entry(p, l, root, sandbox_etc_host_files[i], err, errlen)) < 0)
            return r;
    if ((r = add_python_binds(p, l, root, err, errlen)) < 0)
        return r;
    if ((r = add_host_link(p, l, root, "localtime", err, errlen)) < 0)
        return r;
    return add_host_link(p, l, root, "os-release", err, errlen);
}

void rootfs_release(struct jail_plan *p)
{
    for (size_t i = 0; i < JAIL_MAX_ETC_FILES; i++) {
        free(p->etc_heap[i]);
        p->etc_heap[i] = NULL;
    }
    for (size_t i = 0; i < p->n_runner_files; i++) {
        free(p->runner_files[i].data);
        p->runner_files[i].data = NULL;
    }
    p->n_runner_files = 0;
}

int rootfs_child_write(const char *rel, const char *data, size_t len, mode_t mode, struct jail_child_error *e)
{
    char shown[96]; /* "/rel" for the message */
    shown[0] = '/';
    size_t n = strnlen(rel, sizeof(shown) - 2);
    memcpy(shown + 1, rel, n);
    shown[n + 1] = '\0';
    int fd = open(rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return child_fail(e, "create", shown, errno);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            close(fd);
            return child_fail(e, "write", shown, saved);
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

/* child: write the generated files into the new root's etc tmpfs. */
int rootfs_write_etc(const struct jail_plan *p, struct jail_child_error *e)
{
    for (size_t i = 0; i < p->n_etc_files; i++) {
        const struct jail_etc_file *f = &p->etc_files[i];
        char rel[sizeof(f->name) + 4]; /* "etc/name", relative to the new root */
        memcpy(rel, "etc/", 4);
        memcpy(rel + 4, f->name, strnlen(f->name, sizeof(f->name) - 1) + 1);
        int r = rootfs_child_write(rel, f->data, f->len, 0644, e);
        if (r < 0)
            return r;
    }
    return 0;
}
