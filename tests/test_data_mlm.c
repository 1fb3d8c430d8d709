/* Masked-LM batches: tables from a tokenizer (and the error when [MASK] & co.
 * are missing), packing checked against a reference segmentation of the
 * documents written here, masking statistics over ~2e6 positions against
 * BERT's 15% / 80-10-10, whole-word grouping against an independent word
 * segmentation, determinism per seed. */
#include <math.h>

#include "testutil.h"

#include "selfsup/mlm.h"

/* ---- a small tokenizer: 6 specials, 256 bytes, 26 merges " a" .. " z" ----------------- */
enum { EOT = 0, PAD = 1, CLS = 2, SEP = 3, MASK = 4, UNK = 5, BYTE0 = 6, WORD0 = 262, VOCAB = 288 };
#define SPACE_ID (BYTE0 + ' ')

static ss_tokenizer *build_tok(const char *const *specials, int n_special) {
    static char strs[VOCAB][8];
    const char *vocab[VOCAB];
    int32_t merges[26][2];
    ss_added_token added[6];
    int nb = BYTE0 - 6 + n_special; /* first byte id */
    for (int i = 0; i < n_special; i++) {
        vocab[i] = specials[i];
        added[i] = (ss_added_token){specials[i], i, 1};
    }
    for (int b = 0; b < 256; b++) {
        uint32_t cp = ss_byte_to_unicode((uint8_t)b);
        char *s = strs[nb + b];
        memset(s, 0, 8);
        if (cp < 0x80) s[0] = (char)cp;
        else { s[0] = (char)(0xC0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3F)); }
        vocab[nb + b] = s;
    }
    for (int r = 0; r < 26; r++) {
        char *s = strs[nb + 256 + r];
        snprintf(s, 8, "\xc4\xa0%c", 'a' + r);
        vocab[nb + 256 + r] = s;
        merges[r][0] = nb + ' ';
        merges[r][1] = nb + 'a' + r;
    }
    ss_tokenizer_spec spec = {(size_t)(nb + 256 + 26), vocab, 26, (const int32_t(*)[2])merges,
                              (size_t)n_special, added, SS_NORM_NONE, 0};
    ss_tokenizer *t = NULL;
    ss_error err = {0};
    CHECK_OK(ss_tokenizer_build(&t, &spec, &err), &err);
    return t;
}

static const char *const all_specials[6] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"};

static void make_cfg(ss_mlm_config *cfg) {
    ss_tokenizer *t = build_tok(all_specials, 6);
    ss_error err = {0};
    CHECK_OK(ss_mlm_config_from_tokenizer(cfg, t, &err), &err);
    ss_tokenizer_free(t);
}

static void test_config_from_tokenizer(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    assert_int_equal(c.cls_id, CLS);
    assert_int_equal(c.sep_id, SEP);
    assert_int_equal(c.pad_id, PAD);
    assert_int_equal(c.mask_id, MASK);
    assert_int_equal(c.vocab_size, VOCAB);
    for (int id = 0; id < VOCAB; id++) assert_int_equal(c.is_special[id], id < BYTE0);
    for (int id = 0; id < VOCAB; id++)
        assert_int_equal(c.word_start[id], id == SPACE_ID || id >= WORD0);
    assert_int_equal(c.n_ordinary, VOCAB - BYTE0);
    for (size_t i = 0; i < c.n_ordinary; i++) assert_int_equal(c.ordinary[i], BYTE0 + (int)i);
    assert_true(fabsf(c.mask_prob - 0.15f) < 1e-7f && fabsf(c.mask_replace - 0.8f) < 1e-7f &&
                fabsf(c.mask_random - 0.1f) < 1e-7f && !c.whole_word);
    ss_error err = {0};
    CHECK_OK(ss_mlm_config_check(&c, &err), &err);
    ss_mlm_config bad = c;
    bad.mask_prob = 0;
    assert_int_equal(ss_mlm_config_check(&bad, &err), SS_ERR_ARG);
    bad = c;
    bad.mask_prob = NAN;
    assert_int_equal(ss_mlm_config_check(&bad, &err), SS_ERR_ARG);
    bad = c;
    bad.mask_replace = 0.7f, bad.mask_random = 0.4f;
    assert_int_equal(ss_mlm_config_check(&bad, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "exceed 1"));
    bad = c;
    bad.mask_random = -0.1f;
    assert_int_equal(ss_mlm_config_check(&bad, &err), SS_ERR_ARG);
    ss_mlm_config_free(&c);
    ss_mlm_config_free(&c); /* idempotent */
}

static void test_missing_special_tokens(void **state) {
    (void)state;
    static const char *const no_mask[4] = {"<|endoftext|>", "[PAD]", "[CLS]", "[SEP]"};
    ss_tokenizer *t = build_tok(no_mask, 4);
    ss_mlm_config c;
    ss_error err = {0};
    assert_int_equal(ss_mlm_config_from_tokenizer(&c, t, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no [MASK] token"));
    assert_non_null(strstr(err.msg, "default special tokens"));
    ss_mlm_config_free(&c);
    ss_tokenizer_free(t);

    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_data_path("gpt2-tokenizer", "encoder.json"));
    *strrchr(dir, '/') = '\0';
    CHECK_OK(ss_tokenizer_load(&t, dir, &err), &err);
    assert_int_equal(ss_mlm_config_from_tokenizer(&c, t, &err), SS_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no [CLS] token"));
    ss_mlm_config_free(&c);
    ss_tokenizer_free(t);
}

/* ---- synthetic splits --------------------------------------------------------------------- */
static uint64_t xs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    xs ^= xs << 13, xs ^= xs >> 7, xs ^= xs << 17;
    return (uint32_t)((xs >> 16) % n);
}

/* An ordinary token: a word start with probability 0.3, [UNK] (special) 1%. */
static int32_t doc_token(void) {
    uint32_t r = rnd(1000);
    if (r < 10) return UNK;
    if (r < 310) { uint32_t k = rnd(27); return k == 26 ? SPACE_ID : WORD0 + (int32_t)k; }
    int32_t id;
    do id = BYTE0 + (int32_t)rnd(256); while (id == SPACE_ID);
    return id;
}

/* Documents with lengths from lens[], separated by EOT, with an extra
 * leading separator and doubled separators (empty documents) mixed in. */
static void make_split(ss_token_split *s, const size_t *lens, size_t n_docs) {
    size_t cap = 1;
    for (size_t i = 0; i < n_docs; i++) cap += lens[i] + 2;
    s->ids = malloc(cap * sizeof(int32_t));
    s->n = 0;
    s->ids[s->n++] = EOT;
    for (size_t i = 0; i < n_docs; i++) {
        for (size_t j = 0; j < lens[i]; j++) s->ids[s->n++] = doc_token();
        if (i + 1 < n_docs) s->ids[s->n++] = EOT; /* the last document has no separator */
        if (i % 7 == 3) s->ids[s->n++] = EOT;
    }
    s->vocab_size = VOCAB;
    s->separator_id = EOT;
    s->text_bytes = s->n;
}

/* Reference: each document is one segment, or pieces of W when longer than W. */
typedef struct { size_t off, len; int piece; } seg;
static size_t ref_segments(const ss_token_split *s, size_t W, seg *out) {
    size_t n = 0;
    for (size_t i = 0; i < s->n;) {
        if (s->ids[i] == EOT) { i++; continue; }
        size_t j = i;
        while (j < s->n && s->ids[j] != EOT) j++;
        if (j - i <= W) out[n++] = (seg){i, j - i, 0};
        else
            for (size_t o = i; o < j; o += W) out[n++] = (seg){o, j - o < W ? j - o : W, 1};
        i = j;
    }
    return n;
}

/* Check a row's layout ([CLS] (content [SEP])+ [PAD]*, key_valid 1 exactly
 * before the padding) and return its segments as (position, length). */
static int parse_row(const int32_t *tok, const uint8_t *kv, int T, int *pos, int *len) {
    assert_int_equal(tok[0], CLS);
    int used = -1, n = 0, start = 1;
    while (used < 0) {
        int e = start;
        while (e < T && tok[e] != SEP && tok[e] != PAD) {
            assert_int_not_equal(tok[e], CLS);
            e++;
        }
        assert_true(e < T && tok[e] == SEP && e > start); /* non-empty segment ending in [SEP] */
        pos[n] = start, len[n++] = e - start;
        start = e + 1;
        if (start == T || tok[start] == PAD) used = start;
    }
    for (int t = 0; t < T; t++) {
        assert_int_equal(kv[t], t < used);
        if (t >= used) assert_int_equal(tok[t], PAD);
    }
    return n;
}

/* Row segments must be ref[r..r+n) exactly; a piece is alone in its row, and
 * rows of whole documents are full: the next whole document would not fit. */
static void check_row_against(const ss_token_split *s, const seg *ref, size_t n_ref, size_t r, const int32_t *tok,
                              int T, const int *pos, const int *len, int n) {
    assert_true(r + (size_t)n <= n_ref);
    int used = 1;
    for (int k = 0; k < n; k++) {
        const seg *g = &ref[r + (size_t)k];
        assert_int_equal((size_t)len[k], g->len);
        assert_memory_equal(tok + pos[k], s->ids + g->off, g->len * sizeof(int32_t));
        if (g->piece) assert_int_equal(n, 1);
        used += len[k] + 1;
    }
    if (!ref[r].piece && r + (size_t)n < n_ref && !ref[r + (size_t)n].piece)
        assert_true((size_t)used + ref[r + (size_t)n].len + 1 > (size_t)T);
}

static const size_t pack_lens[] = {5, 3, 14, 1, 15, 2, 2, 2, 28, 4, 40, 13, 6, 1, 1, 7, 29, 9, 2, 12,
                                   3, 3, 3, 3, 8, 30, 42, 11, 1, 10};
enum { N_PACK_DOCS = sizeof pack_lens / sizeof *pack_lens };

static void test_pack_sequential(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    ss_token_split s;
    make_split(&s, pack_lens, N_PACK_DOCS);
    ss_doc_index d;
    ss_error err = {0};
    CHECK_OK(ss_doc_index_build(&d, &s, &err), &err);
    assert_int_equal(d.n_docs, N_PACK_DOCS);
    for (size_t i = 0; i < d.n_docs; i++) assert_int_equal(d.len[i], pack_lens[i]);

    for (int T = 3; T <= 20; T++) {
        static seg ref[1024];
        size_t n_ref = ref_segments(&s, (size_t)T - 2, ref), r = 0;
        enum { B = 3 };
        int32_t tok[B * 20];
        uint8_t kv[B * 20];
        uint64_t cursor = 0;
        int filled, pos[20], len[20];
        while ((filled = ss_mlm_pack_sequential(&d, &c, &cursor, B, T, tok, kv)) > 0) {
            for (int b = 0; b < B; b++) {
                if (b >= filled) { /* unfilled rows: all padding */
                    for (int t = 0; t < T; t++) assert_true(tok[b * T + t] == PAD && kv[b * T + t] == 0);
                    continue;
                }
                int n = parse_row(tok + b * T, kv + b * T, T, pos, len);
                check_row_against(&s, ref, n_ref, r, tok + b * T, T, pos, len, n);
                r += (size_t)n;
            }
        }
        assert_int_equal(r, n_ref); /* every token once, in order */
        assert_int_equal(ss_mlm_pack_sequential(&d, &c, &cursor, B, T, tok, kv), 0);
    }
    ss_doc_index_free(&d);
    free(s.ids);
    ss_mlm_config_free(&c);
}

static void test_pack_random(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    ss_token_split s;
    make_split(&s, pack_lens, N_PACK_DOCS);
    ss_doc_index d;
    ss_error err = {0};
    CHECK_OK(ss_doc_index_build(&d, &s, &err), &err);
    enum { T = 16, B = 2000 };
    static seg ref[256];
    size_t n_ref = ref_segments(&s, T - 2, ref);
    static int32_t tok[B * T], tok2[B * T];
    static uint8_t kv[B * T], kv2[B * T];
    static int starts[256];
    ss_rng rng;
    ss_rng_seed(&rng, 7);
    ss_mlm_pack_random(&d, &c, &rng, B, T, tok, kv);
    int pos[T], len[T];
    for (int b = 0; b < B; b++) {
        int n = parse_row(tok + b * T, kv + b * T, T, pos, len), found = 0;
        /* the row is some run of consecutive reference segments */
        for (size_t r = 0; r < n_ref && !found; r++)
            if (ref[r].len == (size_t)len[0] &&
                !memcmp(tok + b * T + pos[0], s.ids + ref[r].off, ref[r].len * sizeof(int32_t))) {
                check_row_against(&s, ref, n_ref, r, tok + b * T, T, pos, len, n);
                starts[r]++;
                found = 1;
            }
        assert_true(found);
    }
    /* starts are drawn in proportion to length: a segment of >= 5 of the 310
     * tokens misses all 2000 rows with probability < (1 - 5/310)^2000 ~ 1e-14 */
    for (size_t r = 0; r < n_ref; r++)
        if (ref[r].len >= 5) assert_true(starts[r] > 0);
    ss_rng_seed(&rng, 7);
    ss_mlm_pack_random(&d, &c, &rng, B, T, tok2, kv2);
    assert_memory_equal(tok, tok2, sizeof tok);
    assert_memory_equal(kv, kv2, sizeof kv);
    ss_rng_seed(&rng, 8);
    ss_mlm_pack_random(&d, &c, &rng, B, T, tok2, kv2);
    assert_memory_not_equal(tok, tok2, sizeof tok);
    ss_doc_index_free(&d);
    free(s.ids);
    ss_mlm_config_free(&c);
}

static void test_doc_index_empty(void **state) {
    (void)state;
    int32_t ids[3] = {EOT, EOT, EOT};
    ss_token_split s = {ids, 3, 3, VOCAB, EOT};
    ss_doc_index d;
    ss_error err = {0};
    assert_int_equal(ss_doc_index_build(&d, &s, &err), SS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no document tokens"));
    ss_doc_index_free(&d);
}

/* ---- masking ------------------------------------------------------------------------------ */
enum { MB = 4000, MT = 512 }; /* 2,048,000 positions */

typedef struct {
    ss_token_split s;
    ss_doc_index d;
    int32_t *orig, *tok, *tg;
    uint8_t *kv;
} mask_data;

/* Rows packed from documents of 1..300 tokens (some padding, [SEP]s, [UNK]s). */
static void mask_data_init(mask_data *m, const ss_mlm_config *c) {
    static size_t lens[4000];
    for (size_t i = 0; i < 4000; i++) lens[i] = 1 + rnd(300);
    make_split(&m->s, lens, 4000);
    ss_error err = {0};
    CHECK_OK(ss_doc_index_build(&m->d, &m->s, &err), &err);
    size_t n = (size_t)MB * MT;
    m->orig = malloc(n * sizeof(int32_t));
    m->tok = malloc(n * sizeof(int32_t));
    m->tg = malloc(n * sizeof(int32_t));
    m->kv = malloc(n);
    ss_rng rng;
    ss_rng_seed(&rng, 1);
    ss_mlm_pack_random(&m->d, c, &rng, MB, MT, m->orig, m->kv);
}

static void mask_data_free(mask_data *m) {
    ss_doc_index_free(&m->d);
    free(m->s.ids);
    free(m->orig), free(m->tok), free(m->tg), free(m->kv);
}

static size_t run_mask(mask_data *m, const ss_mlm_config *c, uint64_t seed) {
    memcpy(m->tok, m->orig, (size_t)MB * MT * sizeof(int32_t));
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    return ss_mlm_mask(c, &rng, MB, MT, m->tok, m->kv, m->tg);
}

static int is_ordinary(int32_t id) { return id >= BYTE0 && id < VOCAB; }

/* Checks the invariants and the 80/10/10 (or custom) shares; the random
 * replacements must be ordinary and uniform over the ordinary ids. */
static void check_mask_stats(mask_data *m, const ss_mlm_config *c, size_t chosen_ret, double prob, double tol_prob) {
    size_t n = (size_t)MB * MT, elig = 0, chosen = 0, n_mask = 0, n_rand = 0, n_same = 0;
    static size_t hist[VOCAB];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++) {
        int e = m->kv[i] && is_ordinary(m->orig[i]);
        elig += e;
        if (m->tg[i] < 0) {
            assert_int_equal(m->tg[i], -1);
            assert_int_equal(m->tok[i], m->orig[i]); /* untouched */
            continue;
        }
        assert_true(e); /* special tokens and padding are never chosen */
        assert_int_equal(m->tg[i], m->orig[i]);
        chosen++;
        if (m->tok[i] == MASK) n_mask++;
        else if (m->tok[i] == m->orig[i]) n_same++;
        else {
            assert_true(is_ordinary(m->tok[i]));
            hist[m->tok[i]]++;
            n_rand++;
        }
    }
    assert_int_equal(chosen, chosen_ret);
    assert_true(elig > n / 2);
    double f = (double)chosen / (double)elig, fm = (double)n_mask / (double)chosen,
           fr = (double)n_rand / (double)chosen, fs = (double)n_same / (double)chosen;
    print_message("# chosen %.5f  [MASK] %.5f  random %.5f  unchanged %.5f\n", f, fm, fr, fs);
    assert_true(fabs(f - prob) < tol_prob);
    assert_true(fabs(fm - c->mask_replace) < 0.005);
    assert_true(fabs(fr - c->mask_random) < 0.005);
    assert_true(fabs(fs - (1.0 - c->mask_replace - c->mask_random)) < 0.005);
    /* chi-square over the 282 ordinary ids (df 281, sd ~23.7): < 281 + 6 sd */
    double expect = (double)n_rand / (VOCAB - BYTE0), chi2 = 0;
    for (int id = BYTE0; id < VOCAB; id++) chi2 += ((double)hist[id] - expect) * ((double)hist[id] - expect) / expect;
    print_message("# random replacements %zu, chi2 %.1f (df 281)\n", n_rand, chi2);
    assert_true(chi2 < 281 + 6 * 23.7);
}

static void test_mask_statistics(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    mask_data m;
    mask_data_init(&m, &c);
    size_t chosen = run_mask(&m, &c, 42);
    check_mask_stats(&m, &c, chosen, 0.15, 0.002);
    mask_data_free(&m);
    ss_mlm_config_free(&c);
}

static void test_mask_custom_shares(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    c.mask_prob = 0.3f, c.mask_replace = 0.5f, c.mask_random = 0.3f;
    mask_data m;
    mask_data_init(&m, &c);
    size_t chosen = run_mask(&m, &c, 43);
    check_mask_stats(&m, &c, chosen, 0.3, 0.002);
    mask_data_free(&m);
    ss_mlm_config_free(&c);
}

static void test_mask_deterministic(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    mask_data m;
    mask_data_init(&m, &c);
    size_t n = (size_t)MB * MT;
    int32_t *tok = malloc(n * sizeof(int32_t)), *tg = malloc(n * sizeof(int32_t));
    for (int ww = 0; ww < 2; ww++) {
        c.whole_word = ww;
        size_t k1 = run_mask(&m, &c, 5);
        memcpy(tok, m.tok, n * sizeof(int32_t));
        memcpy(tg, m.tg, n * sizeof(int32_t));
        assert_int_equal(run_mask(&m, &c, 5), k1);
        assert_memory_equal(tok, m.tok, n * sizeof(int32_t));
        assert_memory_equal(tg, m.tg, n * sizeof(int32_t));
        run_mask(&m, &c, 6);
        assert_memory_not_equal(tg, m.tg, n * sizeof(int32_t));
    }
    free(tok), free(tg);
    mask_data_free(&m);
    ss_mlm_config_free(&c);
}

/* Words segmented here from the original tokens: an eligible token starts a
 * word when it is a word-start token or follows a non-eligible position. */
static void test_mask_whole_word(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    c.whole_word = 1;
    mask_data m;
    mask_data_init(&m, &c);
    size_t chosen = run_mask(&m, &c, 44), elig = 0, words = 0, words_chosen = 0, multi_chosen = 0, counted = 0;
    for (int b = 0; b < MB; b++) {
        int word_state = -1; /* chosen status of the current word, -1 none */
        size_t word_len = 0;
        for (int t = 0; t < MT; t++) {
            size_t i = (size_t)b * MT + (size_t)t;
            int e = m.kv[i] && is_ordinary(m.orig[i]), ch = m.tg[i] >= 0;
            if (!e) {
                assert_false(ch);
                word_state = -1;
                continue;
            }
            elig++;
            counted += ch;
            if (word_state < 0 || c.word_start[m.orig[i]]) {
                words++, words_chosen += ch;
                word_state = ch, word_len = 1;
            } else {
                assert_int_equal(ch, word_state); /* a word is chosen as a unit */
                if (++word_len == 2 && ch) multi_chosen++;
            }
        }
    }
    assert_int_equal(counted, chosen);
    double ft = (double)chosen / (double)elig, fw = (double)words_chosen / (double)words;
    print_message("# whole word: token fraction %.5f, word fraction %.5f, %zu words (%zu multi-token chosen)\n",
                  ft, fw, words, multi_chosen);
    assert_true(multi_chosen > 1000);
    assert_true(fabs(fw - 0.15) < 0.003);
    assert_true(fabs(ft - 0.15) < 0.004);
    mask_data_free(&m);
    ss_mlm_config_free(&c);
}

/* Rows with few eligible tokens and a tiny mask_prob: the fallback must
 * choose exactly one position (word) in nearly every row, uniformly. */
static void test_mask_at_least_one(void **state) {
    (void)state;
    ss_mlm_config c;
    make_cfg(&c);
    c.mask_prob = 1e-4f;
    enum { B = 30000, T = 8 };
    static int32_t tok[B * T], tg[B * T];
    static uint8_t kv[B * T];
    for (int ww = 0; ww < 2; ww++) {
        c.whole_word = ww;
        /* [CLS] a b [SEP] c [SEP] y y; every third row: [CLS] [SEP] + y...;
         * the y (ordinary) have key_valid 0, so they are never chosen.
         * a, c start words; b does not, so there are 2 words and 3 tokens. */
        const int32_t y = BYTE0 + 'y';
        const int32_t row[T] = {CLS, WORD0, BYTE0 + 'x', SEP, SPACE_ID, SEP, y, y};
        const int32_t empty[T] = {CLS, SEP, y, y, y, y, y, y};
        for (int b = 0; b < B; b++) {
            memcpy(tok + b * T, b % 3 == 2 ? empty : row, sizeof row);
            for (int t = 0; t < T; t++) kv[b * T + t] = t < (b % 3 == 2 ? 2 : 6);
        }
        ss_rng rng;
        ss_rng_seed(&rng, 9);
        size_t chosen = ss_mlm_mask(&c, &rng, B, T, tok, kv, tg);
        size_t at[T] = {0}, total = 0;
        for (int b = 0; b < B; b++) {
            int n = 0;
            for (int t = 0; t < T; t++)
                if (tg[b * T + t] >= 0) n++, at[t]++;
            if (b % 3 == 2) assert_int_equal(n, 0);
            else assert_true(n >= 1);
            total += (size_t)n;
        }
        assert_int_equal(total, chosen);
        size_t rows = B / 3 * 2;
        if (!ww) { /* one of the 3 tokens, uniformly: 1/3 each */
            for (int t = 1; t <= 4; t += (t == 2 ? 2 : 1))
                assert_true(fabs((double)at[t] / (double)rows - 1.0 / 3) < 0.02);
        } else { /* one of the 2 words: {a b} or {c}, 1/2 each */
            assert_int_equal(at[1], at[2]);
            assert_true(fabs((double)at[1] / (double)rows - 0.5) < 0.02);
            assert_true(fabs((double)at[4] / (double)rows - 0.5) < 0.02);
        }
        assert_int_equal(at[0] + at[3] + at[5] + at[6] + at[7], 0);
    }
    ss_mlm_config_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_from_tokenizer),
        cmocka_unit_test(test_missing_special_tokens),
        cmocka_unit_test(test_pack_sequential),
        cmocka_unit_test(test_pack_random),
        cmocka_unit_test(test_doc_index_empty),
        cmocka_unit_test(test_mask_statistics),
        cmocka_unit_test(test_mask_custom_shares),
        cmocka_unit_test(test_mask_deterministic),
        cmocka_unit_test(test_mask_whole_word),
        cmocka_unit_test(test_mask_at_least_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
