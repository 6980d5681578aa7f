/* fileinfo.h - what the file API says about one file (FILE_STAT, the
 * entries of FILE_LIST, the answer of FILE_RENAME): one shape everywhere. */
#ifndef AIRLOCK_AGENT_FILEINFO_H
#define AIRLOCK_AGENT_FILEINFO_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct agent;

#define FILEINFO_NAMES_CACHE 16
#define FILEINFO_NAME_MAX 64

/* uid/gid -> name, read from the sandbox's own /etc/passwd and /etc/group
 * (what `ls -l` inside it shows), cached for one request. */
struct fileinfo_names {
    struct agent *a;
    int n;
    struct {
        bool group;
        unsigned id;
        char name[FILEINFO_NAME_MAX];
    } e[FILEINFO_NAMES_CACHE];
};

/* The info object of leaf in dirfd (leaf "" : dirfd itself), never
 * following a symlink at the leaf; path is the normalised absolute path it
 * is answered as. NULL with errno set (ENOENT, or EILSEQ when the path is
 * not UTF-8 and cannot be put in JSON). */
json_t *fileinfo_json(struct fileinfo_names *names, int dirfd, const char *leaf, const char *path);

#endif
