/* dirtree.c - directory names and recursive removal, for the file ops
 * above it (files.c's DELETE, files_meta.c's LIST, files_copy.c's move
 * between mounts): every name is taken relative to a directory fd and no
 * symlink is followed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "files_impl.h"
#include "util.h"

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

int files_read_dir_names(int dirfd, char ***out)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    __attribute__((cleanup(closedirp))) DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t n = 0, cap = 64;
    cleanup_strv char **names = calloc(cap + 1, sizeof(char *));
    if (!names)
        return -ENOMEM;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap * 2 + 1) * sizeof(char *));
            if (!nn)
                return -ENOMEM;
            names = nn;
            cap *= 2;
        }
        if (!(names[n] = strdup(de->d_name)))
            return -ENOMEM;
        names[++n] = NULL;
    }
    if (errno)
        return -errno;
    qsort(names, n, sizeof(char *), cmp_names);
    *out = steal_ptr(&names);
    return (int)n;
}

int files_remove_tree_contents(int dirfd, const char *name, int depth)
{
    if (depth > FILES_MAX_DEPTH)
        return -ELOOP;
    cleanup_fd int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    cleanup_strv char **names = NULL;
    int n = files_read_dir_names(fd, &names);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return -errno;
        }
        if (S_ISDIR(st.st_mode)) {
            int r = files_remove_tree_contents(fd, names[i], depth + 1);
            if (r < 0)
                return r;
        }
        if (unlinkat(fd, names[i], S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
            return -errno;
    }
    return 0;
}
