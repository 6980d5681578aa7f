/* record.c: the API object of a sandbox record (what a live and a
 * destroyed sandbox are answered as) and the id check every lookup makes. */
#include <stdlib.h>

#include "record.h"
#include "sandbox_impl.h"
#include "unit.h"

static json_t *field(json_t *j, const char *k) { return json_object_get(j, k); }

int main(void)
{
    CHECK(sandbox_id_valid("sb_0123456789abcdef0123456789abcdef"));
    CHECK(!sandbox_id_valid("sb_0123456789ABCDEF0123456789abcdef"));
    CHECK(!sandbox_id_valid("sb_0123456789abcdef0123456789abcde"));
    CHECK(!sandbox_id_valid("xx_0123456789abcdef0123456789abcdef"));
    CHECK(!sandbox_id_valid(""));

    /* a running sandbox as seen by its owner, then by an admin */
    struct sandbox sb = {.state = SB_RUNNING, .memory_mb = 512, .cpus = 1.5, .timeout_s = 60,
                         .created_ms = 1000, .expires_ms = 61000};
    snprintf(sb.id, sizeof(sb.id), "sb_0123456789abcdef0123456789abcdef");
    snprintf(sb.template_name, sizeof(sb.template_name), "host");
    snprintf(sb.region, sizeof(sb.region), "local");
    snprintf(sb.key_id, sizeof(sb.key_id), "key_abc");
    struct sandbox_record rec;
    char md[] = "{\"team\":\"x\"}";
    sandbox_fill_record(&sb, &rec, md);
    CHECK_STREQ(rec.state, "running");
    json_t *j = sandbox_record_json(&rec, false);
    CHECK(j != NULL);
    CHECK_STREQ(json_string_value(field(j, "state")), "running");
    CHECK(json_integer_value(field(j, "memory_mb")) == 512);
    CHECK_STREQ(json_string_value(field(field(j, "metadata"), "team")), "x");
    CHECK(field(j, "key_id") == NULL);         /* only admins learn the owner */
    CHECK(json_is_null(field(j, "destroyed_at"))); /* null while running */
    CHECK(json_is_null(field(j, "destroy_reason")));
    json_decref(j);
    j = sandbox_record_json(&rec, true);
    CHECK_STREQ(json_string_value(field(j, "key_id")), "key_abc");
    json_decref(j);

    /* torn down after its expiry: "destroying"; after a DELETE: "destroyed" */
    sb.state = SB_DESTROYING;
    sb.destroyed_ms = 62000;
    snprintf(sb.destroy_reason, sizeof(sb.destroy_reason), "expired");
    sandbox_fill_record(&sb, &rec, md);
    CHECK_STREQ(rec.state, "destroying");
    j = sandbox_record_json(&rec, false);
    CHECK_STREQ(json_string_value(field(j, "destroy_reason")), "expired");
    CHECK(json_is_string(field(j, "destroyed_at")));
    json_decref(j);
    snprintf(sb.destroy_reason, sizeof(sb.destroy_reason), "deleted");
    sandbox_fill_record(&sb, &rec, md);
    CHECK_STREQ(rec.state, "destroyed");
    UNIT_DONE();
}
