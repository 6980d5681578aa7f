/* rmtree.h - remove a directory tree the daemon made (templates, builds,
 * cache entries). Its own file: both templates.c and the builder below it
 * (tmpl_build.c) need it, and neither should call the other for it. */
#ifndef AIRLOCK_RMTREE_H
#define AIRLOCK_RMTREE_H

/* rm -rf path without following any symlink; 0 or the first -errno. */
int rmtree(const char *path);

#endif
