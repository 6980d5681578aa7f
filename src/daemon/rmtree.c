/* rmtree.c - rm -rf for the template store and the builder (rmtree.h). */
#include "rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rm -rf of a directory the daemon made: no symlink is followed (the tree
 * holds absolute links that point at the host's own files). */
static int remove_tree_at(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR || errno == ELOOP ? (unlinkat(parent, name, 0) < 0 ? -errno : 0) : -errno;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -errno;
    }
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int q = de->d_type == DT_DIR ? remove_tree_at(dirfd(dir), de->d_name)
                                     : (unlinkat(dirfd(dir), de->d_name, 0) < 0 ? -errno : 0);
        if (q == -EISDIR)
            q = remove_tree_at(dirfd(dir), de->d_name);
        if (q < 0 && r == 0)
            r = q;
    }
    closedir(dir);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && r == 0)
        r = -errno;
    return r;
}

int rmtree(const char *path)
{
    return remove_tree_at(AT_FDCWD, path);
}
