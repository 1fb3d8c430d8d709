/* safetensors reader and writer (format: include/selfsup/safetensors.h).
 * The reader maps the file read-only and checks everything the reference
 * implementation checks before handing out a pointer: header size against
 * the file, JSON syntax and UTF-8, each entry's dtype/shape/offsets, byte
 * length == numel * dtype size, and the offsets tiling the data exactly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "selfsup/io.h"
#include "selfsup/safetensors.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; a big-endian port must byte-swap");

/* The reference implementation refuses headers above 100 MB. */
#define ST_MAX_HEADER 100000000ull
/* Largest integer a JSON number (double) holds exactly. */
#define ST_MAX_INT 9007199254740992.0

/* ---- dtypes ------------------------------------------------------------------ */

static const struct { const char *name; size_t size; } dtypes[SS_DTYPE_COUNT] = {
    [SS_F64] = {"F64", 8},  [SS_F32] = {"F32", 4},   [SS_F16] = {"F16", 2},
    [SS_BF16] = {"BF16", 2}, [SS_I64] = {"I64", 8},  [SS_I32] = {"I32", 4},
    [SS_I16] = {"I16", 2},  [SS_I8] = {"I8", 1},     [SS_U64] = {"U64", 8},
    [SS_U32] = {"U32", 4},  [SS_U16] = {"U16", 2},   [SS_U8] = {"U8", 1},
    [SS_BOOL] = {"BOOL", 1}, [SS_F8_E5M2] = {"F8_E5M2", 1}, [SS_F8_E4M3] = {"F8_E4M3", 1},
};

size_t ss_dtype_size(ss_dtype dt) { return (unsigned)dt < SS_DTYPE_COUNT ? dtypes[dt].size : 0; }

const char *ss_dtype_name(ss_dtype dt) {
    return (unsigned)dt < SS_DTYPE_COUNT ? dtypes[dt].name : "?";
}

int ss_dtype_parse(const char *name, ss_dtype *out) {
    for (int i = 0; i < SS_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) { *out = (ss_dtype)i; return 0; }
    return -1;
}

/* ---- shared helpers ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Open-addressing string table: slots hold index+1 into names[], 0 = empty.
 * Insert returns the index of an existing equal name, or -1 after inserting. */
typedef struct {
    uint32_t *slots;
    size_t mask;
} strtab;

static int strtab_init(strtab *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->mask = cap - 1;
    t->slots = calloc(cap, sizeof *t->slots);
    return t->slots ? 0 : -1;
}

static long strtab_insert(strtab *t, const char *const *names, size_t stride, size_t idx) {
    const char *s = *(const char *const *)((const char *)names + idx * stride);
    for (size_t h = fnv1a(s) & t->mask;; h = (h + 1) & t->mask) {
        if (!t->slots[h]) { t->slots[h] = (uint32_t)idx + 1; return -1; }
        size_t j = t->slots[h] - 1;
        if (strcmp(*(const char *const *)((const char *)names + j * stride), s) == 0) return (long)j;
    }
}

static long strtab_find(const strtab *t, const char *const *names, size_t stride, const char *s) {
    if (!t->slots) return -1;
    for (size_t h = fnv1a(s) & t->mask;; h = (h + 1) & t->mask) {
        if (!t->slots[h]) return -1;
        size_t j = t->slots[h] - 1;
        if (strcmp(*(const char *const *)((const char *)names + j * stride), s) == 0) return (long)j;
    }
}

/* numel * dtype size with overflow detection; -1 on overflow. */
static int tensor_bytes(const int64_t *shape, int ndim, ss_dtype dt, uint64_t *numel,
                        uint64_t *nbytes) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[d], &n)) return -1;
    *numel = n;
    return __builtin_mul_overflow(n, (uint64_t)ss_dtype_size(dt), nbytes) ? -1 : 0;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* ---- writer ---------------------------------------------------------------------- */

static ss_status append_str(ss_buf *b, const char *s, ss_error *err) {
    return ss_buf_append(b, s, strlen(s), err);
}

/* Append s as a JSON string literal (s is known to be valid UTF-8). */
static ss_status append_json_string(ss_buf *b, const char *s, ss_error *err) {
    ss_status st = ss_buf_append(b, "\"", 1, err);
    for (const char *run = s; !st; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        st = ss_buf_append(b, run, (size_t)(s - run), err);
        if (st || c == '\0') break;
        char esc[8];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else snprintf(esc, sizeof esc, "\\u%04x", c);
        st = append_str(b, esc, err);
        run = s + 1;
    }
    return st ? st : ss_buf_append(b, "\"", 1, err);
}

static ss_status check_string(const char *path, const char *what, const char *s, ss_error *err) {
    if (!s) return ss_fail(err, SS_ERR_ARG, "%s: %s is NULL", path, what);
    if (!ss_utf8_valid(s, strlen(s)))
        return ss_fail(err, SS_ERR_ARG, "%s: %s '%s' is not valid UTF-8", path, what, s);
    return SS_OK;
}

static ss_status check_tensor(const char *path, const ss_st_tensor *t, uint64_t *nbytes,
                              ss_error *err) {
    ss_status st = check_string(path, "tensor name", t->name, err);
    if (st) return st;
    if (!*t->name || strcmp(t->name, "__metadata__") == 0)
        return ss_fail(err, SS_ERR_ARG, "%s: invalid tensor name '%s'", path, t->name);
    if ((unsigned)t->dtype >= SS_DTYPE_COUNT)
        return ss_fail(err, SS_ERR_ARG, "%s: tensor '%s': unknown dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > SS_ST_MAX_DIM)
        return ss_fail(err, SS_ERR_ARG, "%s: tensor '%s': ndim %d outside 0..%d", path, t->name,
                       t->ndim, SS_ST_MAX_DIM);
    uint64_t numel;
    if (tensor_bytes(t->shape, t->ndim, t->dtype, &numel, nbytes) != 0)
        return ss_fail(err, SS_ERR_ARG, "%s: tensor '%s': negative or overflowing shape", path, t->name);
    if (*nbytes && !t->data)
        return ss_fail(err, SS_ERR_ARG, "%s: tensor '%s': data is NULL", path, t->name);
    return SS_OK;
}

/* The caller's metadata, then the writer's data checksum (SS_ST_CHECKSUM_KEY). */
static ss_status append_meta(ss_buf *h, const char *path, const ss_st_meta *meta, size_t n_meta,
                             const char *checksum, ss_error *err) {
    strtab keys = {0};
    if (strtab_init(&keys, n_meta)) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = append_str(h, "\"__metadata__\":{", err);
    for (size_t i = 0; !st && i < n_meta; i++) {
        if ((st = check_string(path, "metadata key", meta[i].key, err)) ||
            (st = check_string(path, "metadata value", meta[i].value, err))) break;
        if (strcmp(meta[i].key, SS_ST_CHECKSUM_KEY) == 0) {
            st = ss_fail(err, SS_ERR_ARG, "%s: metadata key '%s' is reserved (the writer's data checksum)", path,
                         meta[i].key);
            break;
        }
        if (strtab_insert(&keys, &meta[0].key, sizeof *meta, i) >= 0) {
            st = ss_fail(err, SS_ERR_ARG, "%s: duplicate metadata key '%s'", path, meta[i].key);
            break;
        }
        if ((st = append_json_string(h, meta[i].key, err)) || (st = append_str(h, ":", err)) ||
            (st = append_json_string(h, meta[i].value, err)) || (st = append_str(h, ",", err))) break;
    }
    free(keys.slots);
    if (!st) st = append_json_string(h, SS_ST_CHECKSUM_KEY, err);
    if (!st) st = append_str(h, ":", err);
    if (!st) st = append_json_string(h, checksum, err);
    return st ? st : append_str(h, "}", err);
}

/* Build the padded JSON header. A first pass checks every tensor and hashes
 * the data section (the tensors' bytes in order) for the checksum, which the
 * header holds in front of the tensor entries. */
static ss_status build_header(ss_buf *h, const char *path, const ss_st_tensor *t, size_t n,
                              const ss_st_meta *meta, size_t n_meta, ss_error *err) {
    strtab names = {0};
    if (strtab_init(&names, n)) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    ss_status st = SS_OK;
    ss_xxh64_state hs;
    ss_xxh64_init(&hs, 0);
    for (size_t i = 0; !st && i < n; i++) {
        uint64_t nbytes = 0;
        if ((st = check_tensor(path, &t[i], &nbytes, err))) break;
        if (strtab_insert(&names, &t[0].name, sizeof *t, i) >= 0)
            st = ss_fail(err, SS_ERR_ARG, "%s: duplicate tensor name '%s'", path, t[i].name);
        else if (nbytes)
            ss_xxh64_update(&hs, t[i].data, nbytes);
    }
    free(names.slots);
    char checksum[17];
    snprintf(checksum, sizeof checksum, "%016" PRIx64, ss_xxh64_digest(&hs));
    if (!st) st = append_str(h, "{", err);
    if (!st) st = append_meta(h, path, meta, n_meta, checksum, err);
    uint64_t off = 0;
    for (size_t i = 0; !st && i < n; i++) {
        uint64_t numel = 0, nbytes = 0;
        tensor_bytes(t[i].shape, t[i].ndim, t[i].dtype, &numel, &nbytes);
        char num[64];
        if ((st = append_str(h, ",", err))) break;
        if ((st = append_json_string(h, t[i].name, err))) break;
        snprintf(num, sizeof num, ":{\"dtype\":\"%s\",\"shape\":[", ss_dtype_name(t[i].dtype));
        st = append_str(h, num, err);
        for (int d = 0; !st && d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
            st = append_str(h, num, err);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + nbytes);
        if (!st) st = append_str(h, num, err);
        off += nbytes;
    }
    if (!st) st = append_str(h, "}", err);
    /* Pad with spaces so 8 + N, the data start, is a multiple of 8. */
    while (!st && h->len % 8) st = append_str(h, " ", err);
    return st;
}

ss_status ss_safetensors_write(const char *path, const ss_st_tensor *tensors, size_t n,
                               const ss_st_meta *meta, size_t n_meta, ss_error *err) {
    ss_buf h = {0};
    ss_status st = build_header(&h, path, tensors, n, meta, n_meta, err);
    ss_atomic_file *a = NULL;
    if (!st) st = ss_atomic_open(&a, path, err);
    if (st) { ss_buf_free(&h); return st; }
    FILE *fp = ss_atomic_stream(a);
    unsigned char size_le[8];
    for (int i = 0; i < 8; i++) size_le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(size_le, 1, 8, fp) == 8 && fwrite(h.data, 1, h.len, fp) == h.len;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t numel = 0, nbytes = 0;
        tensor_bytes(tensors[i].shape, tensors[i].ndim, tensors[i].dtype, &numel, &nbytes);
        ok = !nbytes || fwrite(tensors[i].data, 1, nbytes, fp) == nbytes;
    }
    ss_buf_free(&h);
    if (!ok) {
        ss_fail(err, SS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        ss_atomic_abort(a);
        return SS_ERR_IO;
    }
    return ss_atomic_commit(a, err);
}

/* ---- reader ---------------------------------------------------------------------- */

struct ss_safetensors {
    char *path;
    unsigned char *map;
    size_t map_len;
    cJSON *root;
    ss_st_info *t;
    uint64_t *begin; /* data_offsets[0] per tensor, for the tiling check */
    void **copies;   /* aligned copies of misaligned tensors (mostly NULL) */
    size_t n;
    strtab names;
    const char **meta_key, **meta_val;
    size_t n_meta;
    size_t data_len; /* the data section: the last data_len bytes of the map */
    int verified;    /* the data matched its checksum (or the file has none) */
};

static ss_status fmt_err(ss_error *err, const ss_safetensors *f, const char *name, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
static ss_status fmt_err(ss_error *err, const ss_safetensors *f, const char *name, const char *fmt,
                         ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (name) return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s': %s", f->path, name, msg);
    return ss_fail(err, SS_ERR_FORMAT, "%s: %s", f->path, msg);
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static ss_status parse_shape(ss_safetensors *f, ss_st_info *ti, const cJSON *v, ss_error *err) {
    if (!cJSON_IsArray(v)) return fmt_err(err, f, ti->name, "'shape' is not an array");
    int nd = cJSON_GetArraySize(v);
    if (nd > SS_ST_MAX_DIM)
        return fmt_err(err, f, ti->name, "shape has %d dimensions, more than the %d supported",
                       nd, SS_ST_MAX_DIM);
    ti->ndim = 0;
    for (const cJSON *d = v->child; d; d = d->next) {
        uint64_t x;
        if (json_uint(d, &x)) return fmt_err(err, f, ti->name, "shape[%d] is not a non-negative integer", ti->ndim);
        ti->shape[ti->ndim++] = (int64_t)x;
    }
    return SS_OK;
}

static ss_status parse_offsets(ss_safetensors *f, ss_st_info *ti, const cJSON *v, uint64_t *b,
                               uint64_t *e, ss_error *err) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || json_uint(v->child, b) ||
        json_uint(v->child->next, e))
        return fmt_err(err, f, ti->name, "'data_offsets' is not an array of two non-negative integers");
    if (*e < *b)
        return fmt_err(err, f, ti->name, "data_offsets [%" PRIu64 ", %" PRIu64 "] end before begin", *b, *e);
    return SS_OK;
}

/* Parse one tensor entry into ti; data_size is the size of the data section. */
static ss_status parse_entry(ss_safetensors *f, ss_st_info *ti, uint64_t *begin, const cJSON *e,
                             uint64_t data_size, ss_error *err) {
    if (!cJSON_IsObject(e)) return fmt_err(err, f, ti->name, "entry is not a JSON object");
    const cJSON *field[3] = {0};
    static const char *const fname[3] = {"dtype", "shape", "data_offsets"};
    for (const cJSON *c = e->child; c; c = c->next)
        for (int k = 0; k < 3; k++)
            if (strcmp(c->string, fname[k]) == 0) {
                if (field[k]) return fmt_err(err, f, ti->name, "duplicate field '%s'", fname[k]);
                field[k] = c;
            }
    for (int k = 0; k < 3; k++)
        if (!field[k]) return fmt_err(err, f, ti->name, "missing field '%s'", fname[k]);
    if (!cJSON_IsString(field[0])) return fmt_err(err, f, ti->name, "'dtype' is not a string");
    if (ss_dtype_parse(field[0]->valuestring, &ti->dtype))
        return fmt_err(err, f, ti->name, "unknown dtype '%s'", field[0]->valuestring);
    uint64_t b = 0, end = 0, numel = 0, nbytes = 0;
    ss_status st = parse_shape(f, ti, field[1], err);
    if (!st) st = parse_offsets(f, ti, field[2], &b, &end, err);
    if (st) return st;
    if (end > data_size)
        return fmt_err(err, f, ti->name, "data_offsets end %" PRIu64 " beyond data size %" PRIu64
                       " (file truncated?)", end, data_size);
    char shape[256];
    shape_str(shape, sizeof shape, ti->ndim, ti->shape);
    if (tensor_bytes(ti->shape, ti->ndim, ti->dtype, &numel, &nbytes))
        return fmt_err(err, f, ti->name, "shape %s overflows", shape);
    if (nbytes != end - b)
        return fmt_err(err, f, ti->name, "shape %s of %s needs %" PRIu64 " bytes but data_offsets [%"
                       PRIu64 ", %" PRIu64 "] hold %" PRIu64, shape, ss_dtype_name(ti->dtype), nbytes,
                       b, end, end - b);
    ti->numel = (int64_t)numel;
    ti->nbytes = (size_t)nbytes;
    *begin = b;
    return SS_OK;
}

static ss_status parse_metadata(ss_safetensors *f, const cJSON *m, ss_error *err) {
    if (!cJSON_IsObject(m)) return fmt_err(err, f, NULL, "'__metadata__' is not a JSON object");
    size_t n = (size_t)cJSON_GetArraySize(m);
    f->meta_key = calloc(n + 1, sizeof *f->meta_key);
    f->meta_val = calloc(n + 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return fmt_err(err, f, NULL, "'__metadata__' value for '%s' is not a string", c->string);
        for (size_t j = 0; j < f->n_meta; j++)
            if (strcmp(f->meta_key[j], c->string) == 0)
                return fmt_err(err, f, NULL, "'__metadata__' has duplicate key '%s'", c->string);
        f->meta_key[f->n_meta] = c->string;
        f->meta_val[f->n_meta++] = c->valuestring;
    }
    return SS_OK;
}

/* Sort tensors by (begin, end) like the reference; full ties (empty tensors
 * at one offset) keep header order. */
static int by_offset(const void *a, const void *b, void *ctx) {
    const ss_safetensors *f = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (f->begin[i] != f->begin[j]) return f->begin[i] < f->begin[j] ? -1 : 1;
    if (f->t[i].nbytes != f->t[j].nbytes) return f->t[i].nbytes < f->t[j].nbytes ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Reorder tensors by offset and check they tile [0, data_size) exactly. */
static ss_status check_tiling(ss_safetensors *f, uint64_t data_size, ss_error *err) {
    size_t *order = malloc((f->n + 1) * sizeof *order);
    ss_st_info *sorted = malloc((f->n + 1) * sizeof *sorted);
    uint64_t *sbegin = malloc((f->n + 1) * sizeof *sbegin);
    if (!order || !sorted || !sbegin) {
        free(order); free(sorted); free(sbegin);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < f->n; i++) order[i] = i;
    qsort_r(order, f->n, sizeof *order, by_offset, f);
    for (size_t k = 0; k < f->n; k++) { sorted[k] = f->t[order[k]]; sbegin[k] = f->begin[order[k]]; }
    free(order);
    free(f->t); free(f->begin);
    f->t = sorted; f->begin = sbegin;
    uint64_t pos = 0;
    for (size_t k = 0; k < f->n; k++) {
        const ss_st_info *t = &f->t[k];
        if (sbegin[k] < pos)
            return fmt_err(err, f, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s'"
                           " ending at %" PRIu64, sbegin[k], sbegin[k] + t->nbytes, f->t[k - 1].name, pos);
        if (sbegin[k] > pos)
            return fmt_err(err, f, t->name, "data_offsets begin %" PRIu64 " leaves a gap after offset %"
                           PRIu64, sbegin[k], pos);
        pos += t->nbytes;
    }
    if (pos != data_size)
        return fmt_err(err, f, NULL, "tensors cover %" PRIu64 " bytes but the data section has %" PRIu64
                       " (trailing bytes)", pos, data_size);
    return SS_OK;
}

/* Point each tensor at its bytes, copying the rare misaligned one. */
static ss_status bind_data(ss_safetensors *f, const unsigned char *data, ss_error *err) {
    f->copies = calloc(f->n + 1, sizeof *f->copies);
    if (!f->copies) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < f->n; k++) {
        ss_st_info *t = &f->t[k];
        const unsigned char *p = data + f->begin[k];
        size_t align = ss_dtype_size(t->dtype);
        if ((uintptr_t)p % align) {
            if (!(f->copies[k] = aligned_alloc(8, (t->nbytes + 7) / 8 * 8)))
                return ss_fail(err, SS_ERR_NOMEM, "out of memory");
            memcpy(f->copies[k], p, t->nbytes);
            p = f->copies[k];
        }
        t->data = p;
    }
    return SS_OK;
}

/* (Re)build the name -> index table; reports a duplicate name. */
static ss_status index_names(ss_safetensors *f, int check, ss_error *err) {
    free(f->names.slots);
    if (strtab_init(&f->names, f->n)) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < f->n; k++)
        if (strtab_insert(&f->names, &f->t[0].name, sizeof *f->t, k) >= 0 && check)
            return fmt_err(err, f, f->t[k].name, "duplicate tensor name");
    return SS_OK;
}

static ss_status parse_tensors(ss_safetensors *f, uint64_t data_size, ss_error *err) {
    size_t n = 0;
    for (const cJSON *c = f->root->child; c; c = c->next) n++;
    f->t = calloc(n + 1, sizeof *f->t);
    f->begin = calloc(n + 1, sizeof *f->begin);
    if (!f->t || !f->begin) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    const cJSON *meta = NULL;
    for (const cJSON *c = f->root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (meta) return fmt_err(err, f, NULL, "duplicate '__metadata__'");
            meta = c;
            continue;
        }
        ss_st_info *ti = &f->t[f->n];
        ti->name = c->string;
        ss_status st = parse_entry(f, ti, &f->begin[f->n], c, data_size, err);
        if (st) return st;
        f->n++;
    }
    ss_status st = meta ? parse_metadata(f, meta, err) : SS_OK;
    if (!st) st = index_names(f, 1, err); /* duplicates first: they would also overlap */
    if (!st) st = check_tiling(f, data_size, err);
    return st ? st : index_names(f, 0, err);
}

/* The data section against the header's SS_ST_CHECKSUM_KEY, when it has one
 * (files from other writers, and selfsup's before the key existed, have none). */
static ss_status verify_checksum(ss_safetensors *f, const unsigned char *data, uint64_t n, ss_error *err) {
    const char *v = ss_safetensors_meta(f, SS_ST_CHECKSUM_KEY);
    if (!v) return SS_OK;
    uint64_t want = 0;
    int ok = strlen(v) == 16;
    for (int i = 0; ok && i < 16; i++) {
        char c = v[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        ok = d >= 0;
        want = want << 4 | (uint64_t)(ok ? d : 0);
    }
    if (!ok)
        return fmt_err(err, f, NULL, "'__metadata__' entry '%s' is not 16 hexadecimal digits: '%.40s'",
                       SS_ST_CHECKSUM_KEY, v);
    uint64_t got = ss_xxh64(data, n, 0);
    if (got != want)
        return fmt_err(err, f, NULL, "tensor data does not match its checksum (XXH64 %016" PRIx64 ", the header's %s "
                       "says %s): the file was damaged after it was written", got, SS_ST_CHECKSUM_KEY, v);
    return SS_OK;
}

static ss_status parse_header(ss_safetensors *f, ss_error *err) {
    if (f->map_len < 8)
        return fmt_err(err, f, NULL, "file is %zu bytes, shorter than the 8-byte header size "
                       "(not a safetensors file, or truncated)", f->map_len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | f->map[i];
    if (hn > f->map_len - 8)
        return fmt_err(err, f, NULL, "header size %" PRIu64 " larger than the rest of the file (%zu "
                       "bytes; truncated or not safetensors)", hn, f->map_len - 8);
    if (hn > ST_MAX_HEADER)
        return fmt_err(err, f, NULL, "header size %" PRIu64 " exceeds the 100 MB limit", hn);
    const char *h = (const char *)f->map + 8;
    if (hn == 0 || h[0] != '{') return fmt_err(err, f, NULL, "header does not start with '{'");
    if (memchr(h, '\0', hn) || !ss_utf8_valid(h, hn))
        return fmt_err(err, f, NULL, "header is not valid UTF-8 text");
    char *text = malloc(hn + 1);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    memcpy(text, h, hn);
    text[hn] = '\0';
    const char *end = NULL;
    f->root = cJSON_ParseWithOpts(text, &end, 1);
    size_t at = end ? (size_t)(end - text) : 0;
    free(text);
    if (!f->root) return fmt_err(err, f, NULL, "header is not valid JSON (error near byte %zu of %" PRIu64 ")",
                                 at, hn);
    if (!cJSON_IsObject(f->root)) return fmt_err(err, f, NULL, "header is not a JSON object");
    f->data_len = f->map_len - 8 - hn;
    ss_status st = parse_tensors(f, f->data_len, err);
    return st ? st : bind_data(f, f->map + 8 + hn, err);
}

static ss_status open_file(ss_safetensors **out, const char *path, int verify, ss_error *err) {
    *out = NULL;
    ss_safetensors *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    ss_status st = SS_OK;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = ss_fail(err, errno == ENOENT ? SS_ERR_NOT_FOUND : SS_ERR_IO, "%s: cannot open: %s", path,
                     strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        st = ss_fail(err, SS_ERR_IO, "%s: not a regular file", path);
    } else if ((f->map_len = (size_t)sb.st_size) > 0) {
        void *m = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) st = ss_fail(err, SS_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        else f->map = m;
    }
    if (fd >= 0) close(fd);
    if (!st) st = parse_header(f, err);
    if (!st && verify) st = ss_safetensors_verify(f, err);
    if (st) { ss_safetensors_close(f); return st; }
    *out = f;
    return SS_OK;
}

ss_status ss_safetensors_open(ss_safetensors **out, const char *path, ss_error *err) {
    return open_file(out, path, 1, err);
}

ss_status ss_safetensors_open_header(ss_safetensors **out, const char *path, ss_error *err) {
    return open_file(out, path, 0, err);
}

ss_status ss_safetensors_verify(ss_safetensors *f, ss_error *err) {
    if (f->verified) return SS_OK;
    size_t start = f->map_len - f->data_len;
    ss_status st = verify_checksum(f, f->map + start, f->data_len, err);
    if (!st) f->verified = 1;
    return st;
}

void ss_safetensors_close(ss_safetensors *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    for (size_t k = 0; f->copies && k < f->n; k++) free(f->copies[k]);
    free(f->copies);
    cJSON_Delete(f->root);
    free(f->t); free(f->begin); free(f->names.slots);
    free(f->meta_key); free(f->meta_val);
    free(f->path);
    free(f);
}

const char *ss_safetensors_path(const ss_safetensors *f) { return f->path; }
size_t ss_safetensors_count(const ss_safetensors *f) { return f->n; }

const char *ss_safetensors_name(const ss_safetensors *f, size_t i) {
    return i < f->n ? f->t[i].name : NULL;
}

const ss_st_info *ss_safetensors_info(const ss_safetensors *f, size_t i) {
    return i < f->n ? &f->t[i] : NULL;
}

const ss_st_info *ss_safetensors_find(const ss_safetensors *f, const char *name) {
    long k = strtab_find(&f->names, &f->t[0].name, sizeof *f->t, name);
    return k < 0 ? NULL : &f->t[k];
}

ss_status ss_safetensors_get(const ss_safetensors *f, const char *name, ss_dtype dtype,
                             int expected_ndim, const int64_t *expected_shape,
                             const void **data, ss_error *err) {
    const ss_st_info *t = ss_safetensors_find(f, name);
    if (!t) return ss_fail(err, SS_ERR_NOT_FOUND, "%s: no tensor '%s'", f->path, name);
    if (t->dtype != dtype)
        return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s': dtype %s, expected %s", f->path, name,
                       ss_dtype_name(t->dtype), ss_dtype_name(dtype));
    int bad = expected_ndim >= 0 && t->ndim != expected_ndim;
    for (int d = 0; !bad && expected_shape && expected_ndim >= 0 && d < t->ndim; d++) bad = t->shape[d] != expected_shape[d];
    if (bad) {
        char got[256], want[256];
        shape_str(got, sizeof got, t->ndim, t->shape);
        if (expected_shape && expected_ndim >= 0) shape_str(want, sizeof want, expected_ndim, expected_shape);
        else snprintf(want, sizeof want, "%d dimensions", expected_ndim);
        return ss_fail(err, SS_ERR_FORMAT, "%s: tensor '%s': shape %s, expected %s", f->path, name, got, want);
    }
    *data = t->data;
    return SS_OK;
}

ss_status ss_safetensors_get_f32(const ss_safetensors *f, const char *name, int expected_ndim,
                                 const int64_t *expected_shape, const float **data, ss_error *err) {
    const void *p;
    ss_status st = ss_safetensors_get(f, name, SS_F32, expected_ndim, expected_shape, &p, err);
    if (!st) *data = p;
    return st;
}

const char *ss_safetensors_meta(const ss_safetensors *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

size_t ss_safetensors_meta_count(const ss_safetensors *f) { return f->n_meta; }

const char *ss_safetensors_meta_key(const ss_safetensors *f, size_t i) {
    return i < f->n_meta ? f->meta_key[i] : NULL;
}
