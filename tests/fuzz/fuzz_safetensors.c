/* safetensors files (model.safetensors, optimizer.safetensors): the input is
 * the file ss_safetensors_open maps and validates. A file that opens has
 * tensors that tile its data exactly, each found by its name, every byte
 * readable; written back with ss_safetensors_write it reads back the same,
 * plus the checksum the writer adds (SS_ST_CHECKSUM_KEY), which verifies. */
#include "fuzz.h"

#include "selfsup/safetensors.h"

static void same_file(const ss_safetensors *a, const ss_safetensors *b) {
    FZ_CHECK(ss_safetensors_count(a) == ss_safetensors_count(b), "tensor count");
    FZ_CHECK(ss_safetensors_meta_count(a) + 1 == ss_safetensors_meta_count(b) && ss_safetensors_meta(b, SS_ST_CHECKSUM_KEY),
             "metadata count: the input's and the writer's checksum");
    for (size_t i = 0; i < ss_safetensors_count(a); i++) {
        const ss_st_info *x = ss_safetensors_info(a, i), *y = ss_safetensors_find(b, x->name);
        FZ_CHECK(y && y->dtype == x->dtype && y->ndim == x->ndim && y->nbytes == x->nbytes, "tensor '%s'", x->name);
        FZ_CHECK(memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof *x->shape) == 0, "shape of '%s'", x->name);
        FZ_CHECK(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0, "data of '%s'", x->name);
    }
    for (size_t i = 0; i < ss_safetensors_meta_count(a); i++) {
        const char *k = ss_safetensors_meta_key(a, i), *v = ss_safetensors_meta(b, k);
        FZ_CHECK(v && strcmp(v, ss_safetensors_meta(a, k)) == 0, "metadata '%s'", k);
    }
}

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024], out[1024];
    fz_write(path, sizeof path, "in.safetensors", data, size);
    ss_safetensors *f = NULL;
    ss_error err = {0};
    ss_status st = ss_safetensors_open(&f, path, &err);
    fz_note("safetensors", st, &err);
    if (st) {
        fz_check_error(st, &err);
        FZ_CHECK(f == NULL, "a failed open returned a file");
        return 0;
    }
    size_t n = ss_safetensors_count(f), total = 0, nm = ss_safetensors_meta_count(f);
    ss_st_tensor *t = calloc(n + 1, sizeof *t);
    ss_st_meta *meta = calloc(nm + 1, sizeof *meta);
    if (!t || !meta) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        const ss_st_info *ti = ss_safetensors_info(f, i);
        FZ_CHECK(ti && ti->name && strcmp(ss_safetensors_name(f, i), ti->name) == 0, "tensor %zu", i);
        FZ_CHECK(ss_safetensors_find(f, ti->name) == ti, "'%s' is not found by its name", ti->name);
        FZ_CHECK(ti->ndim >= 0 && ti->ndim <= SS_ST_MAX_DIM, "ndim %d", ti->ndim);
        FZ_CHECK(ti->nbytes == (size_t)ti->numel * ss_dtype_size(ti->dtype), "'%s': %zu bytes for %lld values",
                 ti->name, ti->nbytes, (long long)ti->numel);
        for (size_t k = 0; k < ti->nbytes; k++) sum += ((const unsigned char *)ti->data)[k];
        total += ti->nbytes;
        t[i] = (ss_st_tensor){ti->name, ti->dtype, ti->ndim, {0}, ti->data};
        memcpy(t[i].shape, ti->shape, sizeof t[i].shape);
        const void *p;
        st = ss_safetensors_get(f, ti->name, ti->dtype, ti->ndim, ti->shape, &p, &err);
        FZ_CHECK(st == SS_OK && p == ti->data, "get '%s': %s", ti->name, err.msg);
    }
    FZ_CHECK(total <= size, "tensors hold %zu bytes in a %zu-byte file", total, size);
    for (size_t i = 0; i < nm; i++) {
        meta[i].key = ss_safetensors_meta_key(f, i);
        meta[i].value = ss_safetensors_meta(f, meta[i].key);
        FZ_CHECK(meta[i].value != NULL, "metadata '%s' not found by its key", meta[i].key);
    }
    /* written back, it reads back the same (when the writer takes its names) */
    fz_path(out, sizeof out, "out.safetensors");
    st = ss_safetensors_write(out, t, n, meta, nm, &err);
    if (st) {
        fz_check_error(st, &err);
    } else {
        ss_safetensors *g = NULL;
        st = ss_safetensors_open(&g, out, &err);
        FZ_CHECK(st == SS_OK, "reading back what was written: %s", err.msg);
        same_file(f, g);
        ss_safetensors_close(g);
    }
    free(t);
    free(meta);
    ss_safetensors_close(f);
    sink = sum; /* every byte was read */
    return 0;
}
