/* The checked path join. */
#include <stdio.h>
#include <string.h>

#include "selfsup/path.h"

ss_status ss_path_join(char *out, size_t cap, const char *dir, const char *name, ss_error *err) {
    size_t n = strlen(dir) + 1 + strlen(name);
    if (n >= cap) {
        if (cap) out[0] = '\0';
        return ss_fail(err, SS_ERR_ARG, "path too long (%zu bytes, at most %zu): %.200s/%.200s%s", n, cap - 1, dir,
                       name, strlen(dir) > 200 || strlen(name) > 200 ? " (shortened here)" : "");
    }
    snprintf(out, cap, "%s/%s", dir, name);
    return SS_OK;
}
