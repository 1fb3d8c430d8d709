/* Tokenizer files: Hugging Face tokenizer.json (load + atomic save) and
 * GPT-2's encoder.json + vocab.bpe (load). Everything selfsup cannot honour
 * exactly (other models, prefix spaces, dropout, templates, ...) is rejected
 * with a message naming the file and the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "selfsup/tokenizer.h"
#include "selfsup/path.h"
#include "tok_internal.h"

/* What a loader gathers before ss_tokenizer_build; strings point into JSON. */
typedef struct {
    const char *path;
    const char **vocab;
    size_t n_vocab;
    ss_tok_strtab tab;
    int32_t (*merges)[2];
    size_t n_merges;
    ss_added_token *added;
    size_t n_added;
    ss_normalization norm;
    int lower;
} loader;

static void loader_free(loader *L) {
    free(L->vocab);
    ss_tok_strtab_free(&L->tab);
    free(L->merges);
    free(L->added);
}

static ss_status parse_json(const char *path, ss_buf *buf, cJSON **root, ss_error *err) {
    ss_status st = ss_read_file(path, buf, err);
    if (st) return st;
    *root = cJSON_ParseWithLength(buf->data, buf->len);
    if (!*root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= buf->data && at <= buf->data + buf->len ? (size_t)(at - buf->data) : 0;
        return ss_fail(err, SS_ERR_FORMAT, "%s: malformed JSON near byte %zu", path, off);
    }
    return SS_OK;
}

static int as_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return 0;
    *id = (int32_t)v->valuedouble;
    return 1;
}

/* Token strings by id from a {token: id} object; ids must be dense once the
 * added tokens (which may extend the range) are placed. The table is sized
 * by the largest id only after that id is known to fit the number of
 * entries (dense ids cannot exceed it), so a hostile id near 2^31 is an
 * error, not a 16 GB allocation: memory stays bounded by the file's size. */
static ss_status load_vocab(loader *L, const cJSON *obj, const char *field, ss_error *err) {
    if (!cJSON_IsObject(obj))
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: missing or not an object", L->path, field);
    size_t n = 0, entries = L->n_added;
    int32_t id = 0;
    const char *top = NULL; /* the token with the largest id */
    for (const cJSON *v = obj->child; v; v = v->next, entries++) {
        if (!as_id(v, &id))
            return ss_fail(err, SS_ERR_FORMAT, "%s: %s: '%s' has id that is not a non-negative integer",
                           L->path, field, v->string);
        if ((size_t)id + 1 > n) n = (size_t)id + 1, top = v->string;
    }
    for (size_t i = 0; i < L->n_added; i++)
        if ((size_t)L->added[i].id + 1 > n) n = (size_t)L->added[i].id + 1, top = L->added[i].content;
    if (n == 0) return ss_fail(err, SS_ERR_FORMAT, "%s: %s: the vocab is empty", L->path, field);
    if (n > entries) {
        char q[256];
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: '%s' has id %zu, but there are only %zu tokens (ids must be "
                       "dense 0..%zu)", L->path, field, ss_quote_bytes(q, sizeof q, top, strlen(top), 60), n - 1,
                       entries, entries - 1);
    }
    L->vocab = calloc(n, sizeof *L->vocab);
    if (!L->vocab) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory for the vocab", L->path);
    L->n_vocab = n;
    for (const cJSON *v = obj->child; v; v = v->next) {
        as_id(v, &id);
        if (L->vocab[id])
            return ss_fail(err, SS_ERR_FORMAT, "%s: %s: id %d is used by both '%s' and '%s'",
                           L->path, field, id, L->vocab[id], v->string);
        L->vocab[id] = v->string;
    }
    for (size_t i = 0; i < L->n_added; i++) {
        const ss_added_token *a = &L->added[i];
        if (L->vocab[a->id] && strcmp(L->vocab[a->id], a->content) != 0)
            return ss_fail(err, SS_ERR_FORMAT, "%s: added_tokens: '%s' has id %d, which %s gives to '%s'",
                           L->path, a->content, a->id, field, L->vocab[a->id]);
        L->vocab[a->id] = a->content;
    }
    for (size_t i = 0; i < n; i++)
        if (!L->vocab[i])
            return ss_fail(err, SS_ERR_FORMAT, "%s: %s: id %zu is missing (ids must be dense 0..%zu)",
                           L->path, field, i, n - 1);
    ss_status st = ss_tok_strtab_init(&L->tab, L->vocab, n, err);
    if (st) ss_error_prefix(err, "%s: %s: ", L->path, field);
    return st;
}

/* One merge "a b": both parts and their concatenation must be tokens. */
static ss_status add_merge(loader *L, const char *a, size_t alen, const char *b, size_t blen,
                           const char *where, ss_error *err) {
    char shown[600];
    snprintf(shown, sizeof shown, "'%.*s %.*s'", (int)(alen > 250 ? 250 : alen), a,
             (int)(blen > 250 ? 250 : blen), b);
    int32_t l = ss_tok_strtab_find(&L->tab, a, alen), r = ss_tok_strtab_find(&L->tab, b, blen);
    if (l < 0 || r < 0) {
        const char *p = l < 0 ? a : b;
        size_t pl = l < 0 ? alen : blen;
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: %s has part '%.*s' not in vocab", L->path, where,
                       shown, (int)(pl > 250 ? 250 : pl), p);
    }
    char cat[1024];
    if (alen + blen >= sizeof cat || !alen || !blen)
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: %s is not a valid merge", L->path, where, shown);
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    cat[alen + blen] = '\0';
    if (ss_tok_strtab_find(&L->tab, cat, alen + blen) < 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: %s: result '%s' not in vocab", L->path, where,
                       shown, cat);
    L->merges[L->n_merges][0] = l;
    L->merges[L->n_merges][1] = r;
    L->n_merges++;
    return SS_OK;
}

/* "a b" with exactly one space. */
static ss_status add_merge_line(loader *L, const char *s, size_t len, const char *where,
                                ss_error *err) {
    const char *sp = memchr(s, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: '%.*s' is not two tokens separated by one space",
                       L->path, where, (int)(len > 300 ? 300 : len), s);
    return add_merge(L, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp + 1 - s), where, err);
}

static ss_status load_merges(loader *L, const cJSON *arr, ss_error *err) {
    if (!cJSON_IsArray(arr))
        return ss_fail(err, SS_ERR_FORMAT, "%s: model.merges: missing or not an array", L->path);
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    L->merges = malloc((n ? n : 1) * sizeof *L->merges);
    if (!L->merges) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory for merges", L->path);
    for (const cJSON *m = arr->child; m; m = m->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "model.merges[%zu]", i);
        ss_status st;
        if (cJSON_IsString(m)) {
            st = add_merge_line(L, m->valuestring, strlen(m->valuestring), where, err);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            st = add_merge(L, a, strlen(a), b, strlen(b), where, err);
        } else {
            st = ss_fail(err, SS_ERR_FORMAT, "%s: %s: expected \"a b\" or [\"a\", \"b\"]", L->path, where);
        }
        if (st) return st;
    }
    return SS_OK;
}

static int is_false_or_absent(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return !v || cJSON_IsFalse(v);
}

static int is_null_or_absent(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return !v || cJSON_IsNull(v);
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static ss_status load_added(loader *L, const cJSON *arr, ss_error *err) {
    if (!arr || cJSON_IsNull(arr)) return SS_OK;
    if (!cJSON_IsArray(arr)) return ss_fail(err, SS_ERR_FORMAT, "%s: added_tokens: not an array", L->path);
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    L->added = calloc(n ? n : 1, sizeof *L->added);
    if (!L->added) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory", L->path);
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(a, "special");
        int32_t id;
        if (!cJSON_IsObject(a) || !as_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id))
            return ss_fail(err, SS_ERR_FORMAT, "%s: added_tokens[%zu]: missing or bad \"id\"", L->path, i);
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return ss_fail(err, SS_ERR_FORMAT, "%s: added_tokens[%zu]: missing or empty \"content\"", L->path, i);
        if (!is_false_or_absent(a, "single_word") || !is_false_or_absent(a, "lstrip") ||
            !is_false_or_absent(a, "rstrip"))
            return ss_fail(err, SS_ERR_FORMAT, "%s: added_tokens[%zu] ('%s'): single_word, lstrip and "
                           "rstrip must be false (not supported)", L->path, i, content->valuestring);
        L->added[i] = (ss_added_token){content->valuestring, id, cJSON_IsTrue(special)};
    }
    L->n_added = n;
    return SS_OK;
}

/* One normalizer (where names it in messages): NFC or NFKC, at most one,
 * before any Lowercase, which may appear once. */
static ss_status load_normalizer(loader *L, const cJSON *nz, const char *where, ss_error *err) {
    const char *p = L->path, *t = type_of(nz);
    if (strcmp(t, "NFC") == 0 || strcmp(t, "NFKC") == 0) {
        if (L->norm != SS_NORM_NONE || L->lower)
            return ss_fail(err, SS_ERR_FORMAT, "%s: %s: %s is only supported once, before Lowercase", p,
                           where, t);
        L->norm = t[2] == 'K' ? SS_NORM_NFKC : SS_NORM_NFC;
    } else if (strcmp(t, "Lowercase") == 0) {
        if (L->lower) return ss_fail(err, SS_ERR_FORMAT, "%s: %s: Lowercase appears twice", p, where);
        L->lower = 1;
    } else {
        return ss_fail(err, SS_ERR_FORMAT, "%s: %s: type '%s' is not supported "
                       "(null, NFC, NFKC, Lowercase, or a Sequence of NFC|NFKC then Lowercase)", p, where, t);
    }
    return SS_OK;
}

static ss_status load_normalizers(loader *L, const cJSON *nz, ss_error *err) {
    if (!nz || cJSON_IsNull(nz)) return SS_OK;
    if (strcmp(type_of(nz), "Sequence") != 0) return load_normalizer(L, nz, "normalizer", err);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(nz, "normalizers");
    if (!cJSON_IsArray(list))
        return ss_fail(err, SS_ERR_FORMAT, "%s: normalizer.normalizers: missing or not an array", L->path);
    size_t i = 0;
    for (const cJSON *n = list->child; n; n = n->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "normalizer.normalizers[%zu]", i);
        ss_status st = load_normalizer(L, n, where, err);
        if (st) return st;
    }
    return SS_OK;
}

/* The pipeline around the model must be exactly GPT-2's byte-level one. */
static ss_status check_pipeline(loader *L, const cJSON *root, ss_error *err) {
    const char *p = L->path;
    if (!is_null_or_absent(root, "truncation") || !is_null_or_absent(root, "padding"))
        return ss_fail(err, SS_ERR_FORMAT, "%s: truncation/padding: must be null (not supported)", p);
    ss_status st = load_normalizers(L, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err);
    if (st) return st;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!cJSON_IsObject(pt) || strcmp(type_of(pt), "ByteLevel") != 0)
        return ss_fail(err, SS_ERR_FORMAT, "%s: pre_tokenizer: must be of type ByteLevel (got %s)", p,
                       cJSON_IsObject(pt) ? type_of(pt) : pt ? "a non-object" : "nothing");
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space");
    if (!cJSON_IsFalse(aps))
        return ss_fail(err, SS_ERR_FORMAT, "%s: pre_tokenizer.add_prefix_space: must be false "
                       "(a prefix space is not supported)", p);
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
    if (rx && !cJSON_IsTrue(rx))
        return ss_fail(err, SS_ERR_FORMAT, "%s: pre_tokenizer.use_regex: must be true", p);
    const char *keys[] = {"decoder", "post_processor"};
    for (int k = 0; k < 2; k++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (d && !cJSON_IsNull(d) && strcmp(type_of(d), "ByteLevel") != 0)
            return ss_fail(err, SS_ERR_FORMAT, "%s: %s: type '%s' is not supported (null or ByteLevel)",
                           p, keys[k], type_of(d));
    }
    return SS_OK;
}

static ss_status check_model(loader *L, const cJSON *model, ss_error *err) {
    const char *p = L->path;
    if (!cJSON_IsObject(model)) return ss_fail(err, SS_ERR_FORMAT, "%s: model: missing or not an object", p);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0))
        return ss_fail(err, SS_ERR_FORMAT, "%s: model.type: '%s' is not supported (only BPE)", p,
                       cJSON_IsString(type) ? type->valuestring : "?");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return ss_fail(err, SS_ERR_FORMAT, "%s: model.dropout: must be null (not supported)", p);
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, affix[k]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
            return ss_fail(err, SS_ERR_FORMAT, "%s: model.%s: must be null (not supported)", p, affix[k]);
    }
    if (!is_false_or_absent(model, "byte_fallback"))
        return ss_fail(err, SS_ERR_FORMAT, "%s: model.byte_fallback: must be false", p);
    return SS_OK;
}

static ss_status finish(loader *L, ss_tokenizer **out, ss_error *err) {
    ss_tokenizer_spec spec = {L->n_vocab, L->vocab, L->n_merges,
                              (const int32_t(*)[2])L->merges, L->n_added, L->added, L->norm,
                              L->lower};
    ss_status st = ss_tokenizer_build(out, &spec, err);
    if (st) ss_error_prefix(err, "%s: ", L->path);
    return st;
}

static ss_status load_hf(ss_tokenizer **out, const char *path, ss_error *err) {
    ss_buf buf = {0};
    cJSON *root = NULL;
    loader L = {.path = path};
    ss_status st = parse_json(path, &buf, &root, err);
    if (!st && !cJSON_IsObject(root)) st = ss_fail(err, SS_ERR_FORMAT, "%s: not a JSON object", path);
    const cJSON *model = root ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    if (!st) st = check_pipeline(&L, root, err);
    if (!st) st = check_model(&L, model, err);
    if (!st) st = load_added(&L, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), err);
    if (!st) st = load_vocab(&L, cJSON_GetObjectItemCaseSensitive(model, "vocab"), "model.vocab", err);
    if (!st) st = load_merges(&L, cJSON_GetObjectItemCaseSensitive(model, "merges"), err);
    if (!st) st = finish(&L, out, err);
    loader_free(&L);
    cJSON_Delete(root);
    ss_buf_free(&buf);
    return st;
}

/* GPT-2: encoder.json {token: id} and vocab.bpe ("#version" line, then one
 * merge per line); <|endoftext|> is a special added token. */
static ss_status load_gpt2(ss_tokenizer **out, const char *enc_path, const char *bpe_path,
                           ss_error *err) {
    ss_buf buf = {0}, bpe = {0};
    cJSON *root = NULL;
    loader L = {.path = enc_path};
    ss_added_token eot = {"<|endoftext|>", 0, 1};
    ss_status st = parse_json(enc_path, &buf, &root, err);
    const cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, eot.content) : NULL;
    if (!st && e && as_id(e, &eot.id)) {
        L.added = malloc(sizeof *L.added);
        if (!L.added) st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
        else L.added[L.n_added++] = eot;
    }
    if (!st) st = load_vocab(&L, root, "vocab", err);
    if (!st) st = ss_read_file(bpe_path, &bpe, err);
    if (!st) {
        size_t lines = 1;
        for (size_t i = 0; i < bpe.len; i++) lines += bpe.data[i] == '\n';
        L.path = bpe_path;
        L.merges = malloc(lines * sizeof *L.merges);
        if (!L.merges) st = ss_fail(err, SS_ERR_NOMEM, "out of memory for merges");
    }
    for (size_t pos = 0, line = 1; !st && pos < bpe.len; line++) {
        const char *s = bpe.data + pos, *nl = memchr(s, '\n', bpe.len - pos);
        size_t len = nl ? (size_t)(nl - s) : bpe.len - pos;
        pos += len + 1;
        if (len && s[len - 1] == '\r') len--;
        if (len == 0 || (line == 1 && s[0] == '#')) continue;
        char where[32];
        snprintf(where, sizeof where, "line %zu", line);
        st = add_merge_line(&L, s, len, where, err);
    }
    if (!st) st = finish(&L, out, err);
    loader_free(&L);
    cJSON_Delete(root);
    ss_buf_free(&buf);
    ss_buf_free(&bpe);
    return st;
}

ss_status ss_tokenizer_load(ss_tokenizer **out, const char *path, ss_error *err) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return load_hf(out, path, err);
    size_t n = strlen(path) + 32;
    char *a = malloc(n), *b = malloc(n);
    ss_status st;
    if (!a || !b) {
        st = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    } else if (!(st = ss_path_join(a, n, path, SS_RUN_TOKENIZER, err)) && ss_file_exists(a)) {
        st = load_hf(out, a, err);
    } else if (!st && !(st = ss_path_join(a, n, path, "encoder.json", err)) &&
               !(st = ss_path_join(b, n, path, "vocab.bpe", err))) {
        if (ss_file_exists(a) && ss_file_exists(b)) st = load_gpt2(out, a, b, err);
        else st = ss_fail(err, SS_ERR_IO, "%s: directory has neither tokenizer.json nor "
                          "encoder.json + vocab.bpe", path);
    }
    free(a);
    free(b);
    return st;
}

/* ---- save ------------------------------------------------------------------------- */
static cJSON *byte_level(int decoder) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", decoder);
    cJSON_AddBoolToObject(o, "trim_offsets", 1);
    cJSON_AddBoolToObject(o, "use_regex", 1);
    return o;
}

static cJSON *model_json(const ss_tokenizer *t) {
    cJSON *m = cJSON_CreateObject(), *vocab = cJSON_CreateObject(), *merges = cJSON_CreateArray();
    cJSON_AddStringToObject(m, "type", "BPE");
    cJSON_AddNullToObject(m, "dropout");
    cJSON_AddNullToObject(m, "unk_token");
    cJSON_AddNullToObject(m, "continuing_subword_prefix");
    cJSON_AddNullToObject(m, "end_of_word_suffix");
    cJSON_AddBoolToObject(m, "fuse_unk", 0);
    cJSON_AddBoolToObject(m, "byte_fallback", 0);
    for (size_t id = 0; id < t->vocab_size; id++)
        cJSON_AddItemToObject(vocab, t->str[id], cJSON_CreateNumber((double)id));
    /* "a b" strings are ambiguous when a part holds a space; use pairs then */
    int pairs = 0;
    for (size_t r = 0; r < t->n_merges; r++)
        pairs |= strchr(t->str[t->merges[r][0]], ' ') || strchr(t->str[t->merges[r][1]], ' ');
    for (size_t r = 0; r < t->n_merges; r++) {
        const char *a = t->str[t->merges[r][0]], *b = t->str[t->merges[r][1]];
        if (pairs) {
            const char *ab[2] = {a, b};
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(ab, 2));
        } else {
            size_t la = strlen(a), lb = strlen(b);
            char *s = malloc(la + lb + 2);
            if (!s) { cJSON_Delete(m); cJSON_Delete(vocab); cJSON_Delete(merges); return NULL; }
            memcpy(s, a, la);
            s[la] = ' ';
            memcpy(s + la + 1, b, lb + 1);
            cJSON_AddItemToArray(merges, cJSON_CreateString(s));
            free(s);
        }
    }
    cJSON_AddItemToObject(m, "vocab", vocab);
    cJSON_AddItemToObject(m, "merges", merges);
    return m;
}

/* null, one normalizer, or HF's Sequence of NFC|NFKC then Lowercase. */
static cJSON *normalizer_json(const ss_tokenizer *t) {
    cJSON *norm = NULL, *lower = NULL;
    if (t->norm != SS_NORM_NONE) {
        norm = cJSON_CreateObject();
        cJSON_AddStringToObject(norm, "type", t->norm == SS_NORM_NFC ? "NFC" : "NFKC");
    }
    if (t->lower) {
        lower = cJSON_CreateObject();
        cJSON_AddStringToObject(lower, "type", "Lowercase");
    }
    if (!norm || !lower) return norm ? norm : lower ? lower : cJSON_CreateNull();
    cJSON *seq = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToArray(list, norm);
    cJSON_AddItemToArray(list, lower);
    cJSON_AddItemToObject(seq, "normalizers", list);
    return seq;
}

/* An added token as Hugging Face writes it (tokenizer.json's added_tokens
 * with its id; tokenizer_config.json's added_tokens_decoder keys it by id). */
static cJSON *added_token_json(const ss_added_token *t, int with_id) {
    cJSON *a = cJSON_CreateObject();
    if (with_id) cJSON_AddNumberToObject(a, "id", t->id);
    cJSON_AddStringToObject(a, "content", t->content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", t->special);
    return a;
}

ss_status ss_tokenizer_save(const ss_tokenizer *t, const char *path, ss_error *err) {
    cJSON *root = cJSON_CreateObject(), *added = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    for (size_t i = 0; i < t->n_added; i++) cJSON_AddItemToArray(added, added_token_json(&t->added[i], 1));
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddItemToObject(root, "normalizer", normalizer_json(t));
    cJSON_AddItemToObject(root, "pre_tokenizer", byte_level(0));
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", byte_level(1));
    cJSON *model = model_json(t);
    char *text = NULL;
    if (model) {
        cJSON_AddItemToObject(root, "model", model);
        text = cJSON_Print(root);
    }
    cJSON_Delete(root);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory writing the tokenizer", path);
    ss_status st = ss_write_file_atomic(path, text, strlen(text), err);
    cJSON_free(text);
    const char *base = strrchr(path, '/');
    if (!st && !strcmp(base ? base + 1 : path, "tokenizer.json")) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", base ? (int)(base - path) : 1, base ? path : ".");
        st = ss_tokenizer_save_config(t, dir, 0, err);
    }
    return st;
}

/* ---- tokenizer_config.json --------------------------------------------------------
 * What Hugging Face's AutoTokenizer (transformers, transformers.js) reads
 * beside tokenizer.json: the class (GPT-2's byte-level BPE), the special
 * tokens by role (null when absent, so GPT-2's defaults are not invented),
 * no cleanup of spaces on decode (it would break the byte-exact round trip),
 * and the model's maximum length when known. */
static void add_role(cJSON *o, const ss_tokenizer *t, const char *role, const char *token) {
    int32_t id = ss_tokenizer_token_id(t, token);
    if (id >= 0 && ss_tokenizer_is_special(t, id)) cJSON_AddStringToObject(o, role, token);
    else if (!strcmp(role, "bos_token") || !strcmp(role, "eos_token") || !strcmp(role, "unk_token"))
        cJSON_AddNullToObject(o, role);
}

char *ss_tokenizer_config_json(const ss_tokenizer *t, int model_max_length) {
    static const char *const ROLES[][2] = {
        {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"}, {"unk_token", "[UNK]"},
        {"pad_token", "[PAD]"},         {"cls_token", "[CLS]"},         {"sep_token", "[SEP]"},
        {"mask_token", "[MASK]"},
    };
    cJSON *o = cJSON_CreateObject(), *dec = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tokenizer_class", "GPT2Tokenizer");
    cJSON_AddBoolToObject(o, "clean_up_tokenization_spaces", 0);
    cJSON_AddBoolToObject(o, "add_prefix_space", 0);
    cJSON_AddBoolToObject(o, "add_bos_token", 0);
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++) add_role(o, t, ROLES[i][0], ROLES[i][1]);
    if (model_max_length > 0) cJSON_AddNumberToObject(o, "model_max_length", model_max_length);
    for (size_t i = 0; i < t->n_added; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", t->added[i].id);
        cJSON_AddItemToObject(dec, id, added_token_json(&t->added[i], 0));
    }
    cJSON_AddItemToObject(o, "added_tokens_decoder", dec);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

ss_status ss_tokenizer_save_config(const ss_tokenizer *t, const char *dir, int model_max_length, ss_error *err) {
    char path[SS_PATH_MAX];
    ss_status st = ss_path_join(path, sizeof path, dir, SS_RUN_TOKENIZER_CONFIG, err);
    if (st) return st;
    char *text = ss_tokenizer_config_json(t, model_max_length);
    if (!text) return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory", path);
    st = ss_write_file_atomic(path, text, strlen(text), err);
    cJSON_free(text);
    return st;
}
