/* treehash.h - the identity of a template's root filesystem tree.
 *
 * The tree hash is SHA-256 over one record per entry, depth first, names in
 * byte order (strcmp), each record a run of NUL-terminated fields:
 *
 *   d  mode uid gid path                     directory (the root's path is "")
 *   f  mode uid gid size sha256(content) path  regular file
 *   l  uid gid path target                   symbolic link
 *   c|b  mode uid gid major minor path       device node
 *   p|s  mode uid gid path                   fifo, socket
 *
 * mode is the permission bits (07777) in octal; a file carrying a
 * security.capability xattr gets a trailing "cap" field. Timestamps, inode
 * numbers and other xattrs are not part of it: they differ between two
 * builds of the same packages (maintainer scripts run "now") while saying
 * nothing about what a program in the sandbox gets to run or read.
 * Written "sha256:<64 hex>". docs/templates.md has the same description.
 */
#ifndef AIRLOCK_TREEHASH_H
#define AIRLOCK_TREEHASH_H

#include <stddef.h>
#include <stdint.h>

#define TREE_HASH_LEN 71 /* "sha256:" + 64 hex */

struct tree_stats {
    uint64_t files, dirs, links, others;
    uint64_t bytes; /* sum of regular file sizes */
};

/* Hash the tree at root into out (TREE_HASH_LEN+1 bytes). 0 or -errno, with
 * err naming the path that failed. */
int tree_hash(const char *root, char *out, struct tree_stats *stats, char *err, size_t errlen);

/* Remove what a sandbox must never get from a tree: set-user-ID and
 * set-group-ID bits and file capabilities. Returns how many files were
 * changed, or -errno. */
int tree_sanitize(const char *root, char *err, size_t errlen);

/* Add an inotify watch (ifd) on every directory of the tree for any change
 * of its entries or their contents. Returns the number of watches or -errno
 * (-ENOSPC: fs.inotify.max_user_watches is too low). */
int tree_watch(const char *root, int ifd, char *err, size_t errlen);

#endif
