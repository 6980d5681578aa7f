/* fileinfo.c - the info object of one file (fileinfo.h): path, name, type,
 * size, mode (integer, as the list always had it), mode_octal ("0644"),
 * permissions (as `ls -l` prints them), owner and group (names, as the
 * sandbox's own /etc/passwd and /etc/group give them, else the number),
 * uid, gid, mtime (Unix seconds, as before), modified_at (ISO-8601 UTC),
 * symlink_target (a symlink's text, else null). A symlink is described,
 * never followed: this is lstat, so what a link points to is not read
 * through the path policy's back door. */
#include "fileinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pathpolicy.h"
#include "util.h"

static const char *type_name(mode_t m)
{
    return S_ISREG(m) ? "file" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "symlink" : "other";
}

/* "-rwxr-xr-x", with s/S and t/T for the set-id and sticky bits. */
static void permissions(mode_t m, char out[11])
{
    out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p'
           : S_ISSOCK(m) ? 's' : '-';
    static const char rwx[] = "rwxrwxrwx";
    for (int i = 0; i < 9; i++)
        out[1 + i] = (m & (0400u >> i)) ? rwx[i] : '-';
    if (m & S_ISUID)
        out[3] = (m & S_IXUSR) ? 's' : 'S';
    if (m & S_ISGID)
        out[6] = (m & S_IXGRP) ? 's' : 'S';
    if (m & S_ISVTX)
        out[9] = (m & S_IXOTH) ? 't' : 'T';
    out[10] = '\0';
}

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* Scan the sandbox's passwd or group file for id. fgetpwent/fgetgrent read
 * a file in that format and need no NSS (the agent is static). */
static bool lookup_name(struct agent *a, bool group, unsigned id, char *out)
{
    int fd = pathpolicy_open_system_file(a, group ? "/etc/group" : "/etc/passwd");
    if (fd < 0)
        return false;
    __attribute__((cleanup(fclosep))) FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return false;
    }
    if (group) {
        struct group *g;
        while ((g = fgetgrent(f)))
            if (g->gr_gid == id && g->gr_name && strlen(g->gr_name) < FILEINFO_NAME_MAX) {
                strcpy(out, g->gr_name);
                return true;
            }
    } else {
        struct passwd *p;
        while ((p = fgetpwent(f)))
            if (p->pw_uid == id && p->pw_name && strlen(p->pw_name) < FILEINFO_NAME_MAX) {
                strcpy(out, p->pw_name);
                return true;
            }
    }
    return false;
}

static const char *id_name(struct fileinfo_names *names, bool group, unsigned id)
{
    for (int i = 0; i < names->n; i++)
        if (names->e[i].group == group && names->e[i].id == id)
            return names->e[i].name;
    /* a full cache starts over: a listing has few distinct owners */
    int i = names->n < FILEINFO_NAMES_CACHE ? names->n++ : 0;
    names->e[i].group = group;
    names->e[i].id = id;
    if (!lookup_name(names->a, group, id, names->e[i].name))
        snprintf(names->e[i].name, FILEINFO_NAME_MAX, "%u", id); /* what ls shows for an unnamed id */
    return names->e[i].name;
}

json_t *fileinfo_json(struct fileinfo_names *names, int dirfd, const char *leaf, const char *path)
{
    struct stat st;
    if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW | (*leaf ? 0 : AT_EMPTY_PATH)) < 0)
        return NULL;
    const char *slash = strrchr(path, '/');
    const char *name = slash && slash[1] ? slash + 1 : "/";
    char perms[11], octal[8], when[32];
    permissions(st.st_mode, perms);
    snprintf(octal, sizeof(octal), "%04o", (unsigned)(st.st_mode & 07777));
    struct tm tm;
    time_t t = st.st_mtim.tv_sec;
    if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
        when[0] = '\0';
    json_t *target = json_null();
    if (S_ISLNK(st.st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(dirfd, leaf, buf, sizeof(buf));
        /* a target that is not UTF-8 cannot be said in JSON: null, as for
         * a link read failed meanwhile */
        json_t *s = n >= 0 ? json_stringn(buf, (size_t)n) : NULL;
        if (s) {
            json_decref(target);
            target = s;
        }
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "path", path,
                          "name", name, "type", type_name(st.st_mode), "size", (json_int_t)st.st_size, "mode",
                          (int)(st.st_mode & 07777), "mode_octal", octal, "permissions", perms, "owner",
                          id_name(names, false, st.st_uid), "group", id_name(names, true, st.st_gid), "uid",
                          (json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid, "mtime", (json_int_t)st.st_mtim.tv_sec,
                          "modified_at", when, "symlink_target", target);
    if (!o) /* a path or a name that is not UTF-8 (json_pack took target) */
        errno = EILSEQ;
    return o;
}
