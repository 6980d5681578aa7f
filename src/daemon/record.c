/* record.c - a sandbox's state record (store.h) and the API object made of
 * it (docs/api.md, "The sandbox object"): the one shape both a live sandbox
 * and a destroyed one are answered in. */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "sandbox_impl.h"
#include "util.h"

/* show_owner: only admins learn which key owns a sandbox. */
json_t *sandbox_record_json(const struct sandbox_record *rec, bool show_owner)
{
    char created[40], expires[40], destroyed[40];
    format_time(rec->created_ms, false, created, sizeof(created));
    format_time(rec->expires_ms, false, expires, sizeof(expires));
    format_time(rec->destroyed_ms, false, destroyed, sizeof(destroyed));
    json_t *md = json_loads(rec->metadata ? rec->metadata : "{}", 0, NULL);
    bool gone = strcmp(rec->state, "running") != 0 && strcmp(rec->state, "paused") != 0;
    json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:i,s:f,s:i,s:s,s:s,s:s?,s:s?,s:o}", "id", rec->id, "state",
                          rec->state, "template", rec->template_name, "egress", rec->egress, "isolation",
                          rec->isolation[0] ? rec->isolation : "jail", "region", rec->region,
                          "memory_mb", (int)rec->memory_mb, "cpus", rec->cpus, "timeout_s", (int)rec->timeout_s,
                          "created_at", created, "expires_at", expires, "destroyed_at",
                          gone && rec->destroyed_ms ? destroyed : NULL, "destroy_reason",
                          gone && rec->destroy_reason[0] ? rec->destroy_reason : NULL, "metadata",
                          md ? md : json_object());
    if (j && rec->paused_ms && strcmp(rec->state, "paused") == 0) {
        char at[40], until[40];
        format_time(rec->paused_ms, false, at, sizeof(at));
        format_time(rec->pause_deadline_ms, false, until, sizeof(until));
        json_object_set_new(j, "paused_at", json_string(at));
        json_object_set_new(j, "pause_expires_at", json_string(until));
    }
    /* fork families (docs/api.md): parent_id null unless forked; a
     * sandbox not forked from another is the root of its own family */
    if (j && (json_object_set_new(j, "parent_id", rec->parent_id[0] ? json_string(rec->parent_id) : json_null()) < 0 ||
              json_object_set_new(j, "family_id", json_string(rec->family_id[0] ? rec->family_id : rec->id)) < 0)) {
        json_decref(j);
        return NULL;
    }
    if (j && show_owner &&
        json_object_set_new(j, "key_id", rec->key_id[0] ? json_string(rec->key_id) : json_null()) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void sandbox_fill_record(const struct sandbox *sb, struct sandbox_record *rec, char *metadata)
{
    *rec = (struct sandbox_record){0};
    snprintf(rec->id, sizeof(rec->id), "%s", sb->id);
    /* "destroying" while a teardown runs, except after a DELETE: its answer
     * already said "destroyed" (and nothing of the sandbox is reachable) */
    bool tearing = sb->state == SB_DESTROYING && strcmp(sb->destroy_reason, "deleted") != 0 &&
                   strcmp(sb->destroy_reason, "merged") != 0; /* merge_into answered for it too */
    snprintf(rec->state, sizeof(rec->state), "%s",
             sb->state == SB_RUNNING ? (sb->paused ? "paused" : "running") : tearing ? "destroying" : "destroyed");
    snprintf(rec->template_name, sizeof(rec->template_name), "%s", sb->template_name);
    rec->egress = sb->egress;
    snprintf(rec->isolation, sizeof(rec->isolation), "%s", sb->isolation == ISO_VM ? "vm" : "jail");
    snprintf(rec->region, sizeof(rec->region), "%s", sb->region);
    rec->memory_mb = sb->memory_mb;
    rec->cpus = sb->cpus;
    rec->timeout_s = sb->timeout_s;
    rec->created_ms = sb->created_ms;
    rec->expires_ms = sb->expires_ms;
    if (sb->state == SB_RUNNING && sb->paused) {
        /* the lifetime clock stands still: it would end this long after a
         * resume now */
        rec->expires_ms = now_wall_ms() + sb->remaining_ms;
        rec->paused_ms = sb->paused_ms;
        rec->pause_deadline_ms = sb->pause_deadline_ms;
    }
    rec->destroyed_ms = sb->destroyed_ms;
    snprintf(rec->destroy_reason, sizeof(rec->destroy_reason), "%s", sb->destroy_reason);
    rec->metadata = metadata;
    snprintf(rec->key_id, sizeof(rec->key_id), "%s", sb->key_id);
    snprintf(rec->parent_id, sizeof(rec->parent_id), "%s", sb->parent_id);
    snprintf(rec->family_id, sizeof(rec->family_id), "%s", sb->family_id);
}

bool sandbox_id_valid(const char *id)
{
    if (strlen(id) != SANDBOX_ID_LEN || strncmp(id, "sb_", 3) != 0)
        return false;
    for (const char *p = id + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
