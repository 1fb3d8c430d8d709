/* config.json of a model or classifier directory: the input is the text
 * given to ss_config_from_json. A config that parses is valid, and its own
 * JSON (ss_config_to_json) parses back to the same config. */
#include "fuzz.h"

#include "selfsup/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = fz_cstr(data, size);
    ss_model_config c, back;
    ss_error err = {0};
    ss_status st = ss_config_from_json(&c, json, "config.json", &err);
    fz_note("config.json", st, &err);
    free(json);
    if (st) {
        fz_check_error(st, &err);
        return 0;
    }
    st = ss_config_validate(&c, &err);
    FZ_CHECK(st == SS_OK, "a parsed config is invalid: %s", err.msg);
    char *text = ss_config_to_json(&c);
    FZ_CHECK(text != NULL, "config to JSON");
    st = ss_config_from_json(&back, text, "written", &err);
    FZ_CHECK(st == SS_OK, "its own JSON does not parse: %s (%s)", err.msg, text);
    FZ_CHECK(back.kind == c.kind && back.vocab_size == c.vocab_size && back.n_layer == c.n_layer &&
                 back.d_model == c.d_model && back.n_head == c.n_head && back.d_ff == c.d_ff &&
                 back.max_seq == c.max_seq && back.dropout == c.dropout && back.d_embed == c.d_embed &&
                 back.head == c.head && back.n_classes == c.n_classes && back.pooling == c.pooling &&
                 back.pooler == c.pooler,
             "read back differs: %s", text);
    free(text);
    return 0;
}
