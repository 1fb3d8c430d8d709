/* Prompt-based classification: a template and a verbalizer (parsed and
 * checked here), texts as prompt sequences, and label scores from the LM
 * head's log-probabilities of the verbalizer words (selfsup/prompt.h has the
 * rules and the math). */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "selfsup/nn.h"
#include "selfsup/prompt.h"

typedef enum { PIECE_LIT, PIECE_TEXT, PIECE_WORD } piece_kind;

typedef struct {
    piece_kind kind;
    int space;      /* TEXT, WORD: a leading space (moved here from the literal before) */
    char *text;     /* LIT: the literal, after that move */
    ss_ids ids;     /* LIT: its tokens */
} piece;

/* A sequence variant: the words of m tokens are read at m positions of the
 * base sequence with m - 1 tokens more: an encoder's [MASK] repeated m times
 * (one variant per distinct m), a decoder's prompt followed by the word's
 * first m - 1 tokens (one variant per word of several tokens; words of one
 * token share the prompt alone). */
typedef struct {
    int m;    /* positions read, from pos on */
    int word; /* decoder: the word whose tokens are appended; -1: none */
} variant;

struct ss_prompt {
    char *template_text, *verbalizer;
    int calibrate;
    ss_model_kind kind;
    int max_seq;
    ss_tokenizer *tok;
    int32_t cls, sep, mask, eot, pad;
    piece *pieces;
    int n_pieces;
    int fixed;         /* tokens of the base sequence besides the text's */
    int room;          /* text tokens the longest variant leaves */
    int K, W;          /* labels, words */
    char **labels;     /* [K] */
    char **words;      /* [W] */
    int32_t *word_label; /* [W] */
    size_t *word_off;  /* [W+1] into word_tok */
    ss_ids word_tok;
    int *word_var;     /* [W] */
    variant *vars;
    int NV;
};

static int word_len(const ss_prompt *p, int j) { return (int)(p->word_off[j + 1] - p->word_off[j]); }
static const int32_t *word_ids(const ss_prompt *p, int j) { return p->word_tok.ids + p->word_off[j]; }

void ss_prompt_free(ss_prompt *p) {
    if (!p) return;
    for (int i = 0; i < p->n_pieces; i++) {
        free(p->pieces[i].text);
        ss_ids_free(&p->pieces[i].ids);
    }
    free(p->pieces);
    for (int k = 0; k < p->K; k++) free(p->labels[k]);
    for (int j = 0; j < p->W; j++) free(p->words[j]);
    free(p->labels);
    free(p->words);
    free(p->word_label);
    free(p->word_off);
    ss_ids_free(&p->word_tok);
    free(p->word_var);
    free(p->vars);
    free(p->template_text);
    free(p->verbalizer);
    free(p);
}

ss_prompt_spec ss_prompt_spec_of(const ss_prompt *p) {
    return (ss_prompt_spec){p->template_text, p->verbalizer, p->calibrate};
}
void ss_prompt_set_calibrate(ss_prompt *p, int on) { p->calibrate = on != 0; }
int ss_prompt_num_labels(const ss_prompt *p) { return p->K; }
int ss_prompt_num_words(const ss_prompt *p) { return p->W; }
const char *ss_prompt_label(const ss_prompt *p, int k) { return k >= 0 && k < p->K ? p->labels[k] : NULL; }

/* ---- the template ----------------------------------------------------------------- */

static ss_status add_piece(ss_prompt *p, piece_kind kind, const char *s, size_t n, ss_error *err) {
    piece *np = realloc(p->pieces, (size_t)(p->n_pieces + 1) * sizeof *np);
    if (!np) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    p->pieces = np;
    piece *x = &np[p->n_pieces++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    if (kind == PIECE_LIT && !(x->text = strndup(s, n))) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    return SS_OK;
}

/* Split the template into literals, {text} and [MASK]. */
static ss_status split_template(ss_prompt *p, const char *t, int *n_text, int *n_mask, ss_error *err) {
    size_t lit = 0, i = 0, n = strlen(t);
    ss_status st = SS_OK;
    *n_text = *n_mask = 0;
    while (!st && i <= n) {
        int is_text = !strncmp(t + i, "{text}", 6), is_mask = !strncmp(t + i, "[MASK]", 6);
        if (t[i] == '{' && !is_text) {
            size_t e = i + 1;
            while (e < n && e < i + 24 && t[e] != '}') e++;
            return ss_fail(err, SS_ERR_ARG, "template: '%.*s' at byte %zu is not a placeholder: {text} is the only "
                           "one (where the text goes), [MASK] the word's place", (int)(e - i + (e < n)), t + i, i);
        }
        if (is_text || is_mask || i == n) {
            if (i > lit) st = add_piece(p, PIECE_LIT, t + lit, i - lit, err);
            if (!st && i < n) st = add_piece(p, is_text ? PIECE_TEXT : PIECE_WORD, NULL, 0, err);
            *n_text += is_text;
            *n_mask += is_mask;
            i += i < n ? 6 : 1;
            lit = i;
        } else {
            i++;
        }
    }
    return st;
}

/* The template's rules for this kind of model, then the moved spaces. */
static ss_status parse_template(ss_prompt *p, const char *t, ss_error *err) {
    int n_text, n_mask;
    ss_status st = split_template(p, t, &n_text, &n_mask, err);
    if (st) return st;
    if (n_text == 0)
        return ss_fail(err, SS_ERR_ARG, "template '%s' has no {text}: write where the text goes, e.g. "
                       "'{text} It was [MASK].'", t);
    if (n_text > 1) return ss_fail(err, SS_ERR_ARG, "template '%s' has {text} %d times (once only)", t, n_text);
    if (p->kind == SS_ENCODER) {
        if (n_mask != 1)
            return ss_fail(err, SS_ERR_ARG, "template '%s' has %d [MASK]s: an encoder's template needs exactly one, "
                           "where the verbalizer word goes (e.g. '{text} It was [MASK].'; a word of several tokens "
                           "gets as many [MASK]s by itself)", t, n_mask);
    } else {
        if (n_mask > 1)
            return ss_fail(err, SS_ERR_ARG, "template '%s' has %d [MASK]s: a decoder's template is continued by the "
                           "verbalizer word (e.g. '{text} It was'), at most one [MASK] may end it", t, n_mask);
        piece *last = &p->pieces[p->n_pieces - 1];
        if (n_mask == 1 && last->kind != PIECE_WORD)
            return ss_fail(err, SS_ERR_ARG, "template '%s': a decoder reads left to right, so the verbalizer word "
                           "continues the template and nothing may follow [MASK] (here '%s'); write "
                           "'{text} It was' or '{text} It was [MASK]'", t, last->kind == PIECE_LIT ? last->text : "{text}");
        /* no [MASK]: the word continues the template */
        if (n_mask == 0 && (st = add_piece(p, PIECE_WORD, NULL, 0, err))) return st;
    }
    int appended = p->kind == SS_DECODER && n_mask == 0;
    /* a space just before {text} or the word moves onto it; a word appended
     * to a decoder's template is a new word (" great") unless the template
     * ends in other white space (a line break: "great") */
    for (int i = 1; i < p->n_pieces; i++) {
        piece *x = &p->pieces[i], *prev = &p->pieces[i - 1];
        if (x->kind == PIECE_LIT) continue;
        size_t n = prev->kind == PIECE_LIT ? strlen(prev->text) : 0;
        char end = n ? prev->text[n - 1] : 'x';
        if (end == ' ') {
            prev->text[n - 1] = '\0';
            x->space = 1;
        } else if (appended && i == p->n_pieces - 1) {
            x->space = !isspace((unsigned char)end);
        }
    }
    return SS_OK;
}

/* ---- the verbalizer --------------------------------------------------------------- */

static char *trimmed(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return strndup(s, n);
}

static ss_status push_str(char ***v, int *n, char *s, ss_error *err) {
    if (!s) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) {
        free(s);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    *v = nv;
    nv[(*n)++] = s;
    return SS_OK;
}

static ss_status parse_entry(ss_prompt *p, const char *e, size_t n, int entry, ss_error *err) {
    const char *eq = memchr(e, '=', n);
    if (!eq)
        return ss_fail(err, SS_ERR_ARG, "verbalizer entry %d '%.*s' has no '=': write LABEL=WORD[,WORD...], "
                       "entries separated by ';' (e.g. '0=terrible,bad;1=great,good')", entry, (int)n, e);
    if (memchr(eq + 1, '=', n - (size_t)(eq + 1 - e)))
        return ss_fail(err, SS_ERR_ARG, "verbalizer entry %d '%.*s' has more than one '=' (LABEL=WORD[,WORD...])",
                       entry, (int)n, e);
    char *label = trimmed(e, (size_t)(eq - e));
    if (!label) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!*label) {
        free(label);
        return ss_fail(err, SS_ERR_ARG, "verbalizer entry %d '%.*s' has an empty label", entry, (int)n, e);
    }
    for (int k = 0; k < p->K; k++)
        if (!strcmp(p->labels[k], label)) {
            ss_status st = ss_fail(err, SS_ERR_ARG, "the verbalizer names label '%s' twice (entries %d and %d): "
                                   "list all its words in one entry, separated by ','", label, k + 1, entry);
            free(label);
            return st;
        }
    ss_status st = push_str(&p->labels, &p->K, label, err);
    const char *w = eq + 1, *end = e + n;
    for (int q = 1; !st; q++) {
        const char *c = memchr(w, ',', (size_t)(end - w));
        const char *we = c ? c : end;
        char *word = trimmed(w, (size_t)(we - w));
        if (!word) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        if (!*word) {
            free(word);
            return ss_fail(err, SS_ERR_ARG, "verbalizer label '%s' has an empty word (word %d of entry %d)",
                           p->labels[p->K - 1], q, entry);
        }
        for (int j = 0; j < p->W; j++)
            if (!strcmp(p->words[j], word)) {
                st = p->word_label[j] == p->K - 1
                         ? ss_fail(err, SS_ERR_ARG, "verbalizer label '%s' lists the word '%s' twice",
                                   p->labels[p->K - 1], word)
                         : ss_fail(err, SS_ERR_ARG, "the verbalizer word '%s' is under two labels, '%s' and '%s'",
                                   word, p->labels[p->word_label[j]], p->labels[p->K - 1]);
                free(word);
                return st;
            }
        int32_t *wl = realloc(p->word_label, (size_t)(p->W + 1) * sizeof *wl);
        if (!wl) {
            free(word);
            return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        }
        p->word_label = wl;
        wl[p->W] = p->K - 1;
        st = push_str(&p->words, &p->W, word, err);
        if (!c) break;
        w = c + 1;
    }
    return st;
}

static ss_status parse_verbalizer(ss_prompt *p, const char *v, ss_error *err) {
    size_t n = strlen(v), at = 0;
    ss_status st = SS_OK;
    for (int entry = 1; !st && at <= n; entry++) {
        const char *semi = memchr(v + at, ';', n - at);
        size_t e = semi ? (size_t)(semi - v) : n;
        int blank = 1;
        for (size_t i = at; i < e; i++) blank = blank && isspace((unsigned char)v[i]);
        if (blank && !semi && entry > 1) break; /* a trailing ';' */
        if (blank)
            return ss_fail(err, SS_ERR_ARG, "verbalizer '%s': entry %d is empty (LABEL=WORD[,WORD...] entries "
                           "separated by ';')", v, entry);
        st = parse_entry(p, v + at, e - at, entry, err);
        at = e + 1;
    }
    if (!st && p->K < 2)
        st = ss_fail(err, SS_ERR_ARG, "verbalizer '%s' names %d label: at least 2 are needed (e.g. "
                     "'0=terrible;1=great')", v, p->K);
    return st;
}

/* ---- tokens ----------------------------------------------------------------------- */

static ss_status encode_spaced(ss_tokenizer *tok, int space, const char *s, ss_ids *out, ss_error *err) {
    if (!space) return ss_tokenizer_encode(tok, s, strlen(s), 0, out, err);
    size_t n = strlen(s);
    char *b = malloc(n + 2);
    if (!b) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    b[0] = ' ';
    memcpy(b + 1, s, n + 1);
    ss_status st = ss_tokenizer_encode(tok, b, n + 1, 0, out, err);
    free(b);
    return st;
}

/* "'terr' + 'ible'": a word's tokens as text, for messages. */
static void describe_tokens(const ss_prompt *p, const int32_t *ids, int n, char *out, size_t cap) {
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < n && k + 1 < cap; i++) {
        size_t len;
        const char *b = ss_tokenizer_token_bytes(p->tok, ids[i], &len);
        int w = snprintf(out + k, cap - k, "%s'%.*s'", i ? " + " : "", b ? (int)len : 1, b ? b : "?");
        k += w > 0 ? (size_t)w : 0;
    }
}

static ss_status tokenize_words(ss_prompt *p, ss_error *err) {
    int space = 0;
    for (int i = 0; i < p->n_pieces; i++)
        if (p->pieces[i].kind == PIECE_WORD) space = p->pieces[i].space;
    if (!(p->word_off = malloc((size_t)(p->W + 1) * sizeof(size_t))))
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    p->word_off[0] = 0;
    for (int j = 0; j < p->W; j++) {
        ss_status st = encode_spaced(p->tok, space, p->words[j], &p->word_tok, err);
        if (st) return st;
        p->word_off[j + 1] = p->word_tok.n;
        if (word_len(p, j) == 0)
            return ss_fail(err, SS_ERR_ARG, "the verbalizer word '%s' encodes to no token", p->words[j]);
        for (int i = 0; i < j; i++)
            if (word_len(p, i) == word_len(p, j) &&
                !memcmp(word_ids(p, i), word_ids(p, j), (size_t)word_len(p, j) * sizeof(int32_t)))
                return ss_fail(err, SS_ERR_ARG, "the verbalizer words '%s' and '%s' are the same tokens for this "
                               "tokenizer", p->words[i], p->words[j]);
    }
    return SS_OK;
}

static ss_status special(const ss_prompt *p, const char *name, int32_t *id, ss_error *err) {
    *id = ss_tokenizer_token_id(p->tok, name);
    if (*id < 0) return ss_fail(err, SS_ERR_NOT_FOUND, "the tokenizer has no %s token", name);
    return SS_OK;
}

/* Literal tokens, the variants, and the room left for the text. */
static ss_status plan(ss_prompt *p, ss_error *err) {
    ss_status st = SS_OK;
    int lit = 0, max_m = 1;
    for (int i = 0; i < p->n_pieces && !st; i++)
        if (p->pieces[i].kind == PIECE_LIT) {
            st = ss_tokenizer_encode(p->tok, p->pieces[i].text, strlen(p->pieces[i].text), 0, &p->pieces[i].ids, err);
            lit += (int)p->pieces[i].ids.n;
        }
    if (st) return st;
    if (!(p->word_var = malloc((size_t)p->W * sizeof(int))) || !(p->vars = malloc((size_t)(p->W + 1) * sizeof(variant))))
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (int j = 0; j < p->W; j++) {
        int m = word_len(p, j), v = 0;
        if (m > max_m) max_m = m;
        int shared = p->kind == SS_ENCODER || m == 1; /* one variant per length, or per decoder word */
        while (v < p->NV && !(shared && p->vars[v].word < 0 && p->vars[v].m == m)) v++;
        if (v == p->NV) p->vars[p->NV++] = (variant){m, shared ? -1 : j};
        p->word_var[j] = v;
    }
    p->fixed = lit + (p->kind == SS_ENCODER ? 3 : 1); /* [CLS] [MASK] [SEP], or <|endoftext|> */
    p->room = p->max_seq - p->fixed - (max_m - 1);
    if (p->room < 1)
        return ss_fail(err, SS_ERR_ARG, "the template (%d tokens with the model's special tokens) and the longest "
                       "verbalizer word (%d tokens) fill the model's %d positions: no room is left for the text",
                       p->fixed, max_m, p->max_seq);
    return SS_OK;
}

ss_status ss_prompt_create(ss_prompt **out, const ss_prompt_spec *spec, ss_tokenizer *tok, ss_model_kind kind,
                           int max_seq, ss_error *err) {
    *out = NULL;
    if (!spec->template_text || !spec->verbalizer)
        return ss_fail(err, SS_ERR_ARG, "prompt-based classification needs a template and a verbalizer");
    ss_prompt *p = calloc(1, sizeof *p);
    if (!p) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    p->kind = kind;
    p->max_seq = max_seq;
    p->tok = tok;
    p->calibrate = spec->calibrate != 0;
    p->template_text = strdup(spec->template_text);
    p->verbalizer = strdup(spec->verbalizer);
    ss_status st = p->template_text && p->verbalizer ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st && kind == SS_ENCODER) {
        st = special(p, "[CLS]", &p->cls, err);
        if (!st) st = special(p, "[SEP]", &p->sep, err);
        if (!st) st = special(p, "[MASK]", &p->mask, err);
        if (!st) st = special(p, "[PAD]", &p->pad, err);
    } else if (!st) {
        st = special(p, "<|endoftext|>", &p->eot, err);
        p->pad = p->eot; /* right padding is never read by a causal model */
    }
    if (!st) st = parse_template(p, spec->template_text, err);
    if (!st) st = parse_verbalizer(p, spec->verbalizer, err);
    if (!st) st = tokenize_words(p, err);
    if (!st) st = plan(p, err);
    if (st) ss_prompt_free(p);
    else *out = p;
    return st;
}

ss_status ss_prompt_order_labels(ss_prompt *p, const ss_label_map *m, const char *source, ss_error *err) {
    for (int k = 0; k < p->K; k++)
        if (ss_label_map_find(m, p->labels[k]) < 0)
            return ss_fail(err, SS_ERR_ARG, "the verbalizer's label '%s' is not a label of %s (its labels: %s%s%s%s)",
                           p->labels[k], source, m->names[0], m->n > 1 ? ", " : "", m->n > 1 ? m->names[1] : "",
                           m->n > 2 ? ", ..." : "");
    for (int i = 0; i < m->n; i++) {
        int found = 0;
        for (int k = 0; k < p->K; k++) found = found || !strcmp(p->labels[k], m->names[i]);
        if (!found)
            return ss_fail(err, SS_ERR_ARG, "label '%s' of %s has no verbalizer word: give every label a word "
                           "(LABEL=WORD entries separated by ';')", m->names[i], source);
    }
    /* every label of m is a verbalizer label and vice versa: K == m->n */
    int *to = malloc((size_t)p->K * sizeof(int));
    char **labels = malloc((size_t)p->K * sizeof(char *));
    if (!to || !labels) {
        free(to);
        free(labels);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < p->K; k++) {
        to[k] = ss_label_map_find(m, p->labels[k]);
        labels[to[k]] = p->labels[k];
    }
    for (int j = 0; j < p->W; j++) p->word_label[j] = to[p->word_label[j]];
    free(p->labels);
    p->labels = labels;
    free(to);
    return SS_OK;
}

ss_status ss_prompt_word_tokens(const ss_prompt *p, int32_t *ids, int32_t *labels, ss_error *err) {
    for (int j = 0; j < p->W; j++) {
        if (word_len(p, j) != 1) {
            char toks[512];
            describe_tokens(p, word_ids(p, j), word_len(p, j), toks, sizeof toks);
            return ss_fail(err, SS_ERR_ARG, "the verbalizer word '%s' (label '%s') is %d tokens for this tokenizer "
                           "(%s): prompt-based fine-tuning needs words of one token; choose another word",
                           p->words[j], p->labels[p->word_label[j]], word_len(p, j), toks);
        }
        ids[j] = word_ids(p, j)[0];
        labels[j] = p->word_label[j];
    }
    return SS_OK;
}

/* ---- sequences -------------------------------------------------------------------- */

/* One text's base sequence appended to all; *pos as in ss_prompt_encode. */
static ss_status encode_one(ss_prompt *p, const char *text, ss_ids *all, ss_ids *tmp, int32_t *pos, size_t *n_cut,
                            ss_error *err) {
    size_t start = all->n;
    ss_status st = ss_ids_push(all, p->kind == SS_ENCODER ? p->cls : p->eot, err);
    for (int i = 0; i < p->n_pieces && !st; i++) {
        const piece *x = &p->pieces[i];
        if (x->kind == PIECE_LIT) {
            for (size_t k = 0; k < x->ids.n && !st; k++) st = ss_ids_push(all, x->ids.ids[k], err);
        } else if (x->kind == PIECE_TEXT) {
            tmp->n = 0;
            st = encode_spaced(p->tok, x->space && *text, text, tmp, err);
            size_t n = tmp->n;
            if (n > (size_t)p->room) {
                n = (size_t)p->room;
                (*n_cut)++;
            }
            for (size_t k = 0; k < n && !st; k++) st = ss_ids_push(all, tmp->ids[k], err);
        } else if (p->kind == SS_ENCODER) {
            *pos = (int32_t)(all->n - start);
            st = ss_ids_push(all, p->mask, err);
        }
    }
    if (!st && p->kind == SS_ENCODER) st = ss_ids_push(all, p->sep, err);
    if (!st && p->kind == SS_DECODER) *pos = (int32_t)(all->n - start - 1);
    return st;
}

ss_status ss_prompt_encode(ss_prompt *p, char *const *texts, size_t n, ss_seqs *out, int32_t **pos, ss_error *err) {
    memset(out, 0, sizeof *out);
    *pos = malloc((n ? n : 1) * sizeof(int32_t));
    out->off = malloc((n + 1) * sizeof(size_t));
    if (!*pos || !out->off) {
        free(*pos);
        *pos = NULL;
        ss_seqs_free(out);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    }
    ss_ids all = {0}, tmp = {0};
    ss_status st = SS_OK;
    out->off[0] = 0;
    for (size_t i = 0; i < n && !st; i++) {
        st = encode_one(p, texts[i], &all, &tmp, *pos + i, &out->n_truncated, err);
        out->off[i + 1] = all.n;
    }
    ss_ids_free(&tmp);
    out->ids = all.ids;
    out->n = n;
    if (st) {
        ss_seqs_free(out);
        free(*pos);
        *pos = NULL;
    }
    return st;
}

/* ---- scores ----------------------------------------------------------------------- */

typedef struct {
    size_t text;
    int var, len;
} item;

static int by_len(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    if (x->text != y->text) return x->text < y->text ? -1 : 1;
    return (x->var > y->var) - (x->var < y->var);
}

/* Item it's sequence into row[0..T): the base sequence with variant's extra tokens, padded. */
static void build_row(const ss_prompt *p, const ss_seqs *s, const int32_t *pos, const item *it, int T, int32_t *row,
                      uint8_t *valid) {
    const int32_t *base = s->ids + s->off[it->text];
    int L = (int)ss_seqs_len(s, it->text), at = pos[it->text], n = 0;
    const variant *v = &p->vars[it->var];
    if (p->kind == SS_ENCODER) {
        for (int t = 0; t < at; t++) row[n++] = base[t];
        for (int q = 0; q < v->m; q++) row[n++] = p->mask;
        for (int t = at + 1; t < L; t++) row[n++] = base[t];
    } else {
        for (int t = 0; t < L; t++) row[n++] = base[t];
        for (int q = 0; q + 1 < v->m; q++) row[n++] = word_ids(p, v->word)[q];
    }
    for (int t = 0; t < T; t++) {
        valid[t] = (uint8_t)(t < n);
        if (t >= n) row[t] = p->pad;
    }
}

/* Word log-probabilities wl[n, W] of the encoded texts. */
static ss_status word_logprobs(ss_prompt *p, ss_model *m, const ss_seqs *s, const int32_t *pos, int batch,
                               float *wl, ss_error *err) {
    const ss_model_config *c = ss_model_config_of(m);
    int V = c->vocab_size, maxm = 1;
    for (int v = 0; v < p->NV; v++) maxm = p->vars[v].m > maxm ? p->vars[v].m : maxm;
    size_t n_items = s->n * (size_t)p->NV;
    item *items = malloc((n_items ? n_items : 1) * sizeof *items);
    int T = c->max_seq, P = batch * maxm;
    int32_t *tokens = malloc((size_t)batch * T * sizeof(int32_t)), *where = malloc((size_t)P * sizeof(int32_t));
    uint8_t *valid = malloc((size_t)batch * T);
    float *logits = malloc((size_t)P * V * sizeof(float));
    double *lse = malloc((size_t)P * sizeof(double));
    ss_status st = items && tokens && where && valid && logits && lse ? SS_OK
                                                                      : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n; i++) {
        if (ss_seqs_len(s, i) + (size_t)maxm - 1 > (size_t)T)
            st = ss_fail(err, SS_ERR_ARG, "prompt sequence %zu has %zu tokens (and the longest word %d more): more "
                         "than the model's max_seq %d", i, ss_seqs_len(s, i), maxm - 1, T);
        for (int v = 0; v < p->NV; v++)
            items[i * p->NV + v] = (item){i, v, (int)ss_seqs_len(s, i) + p->vars[v].m - 1};
    }
    if (!st) qsort(items, n_items, sizeof *items, by_len);
    for (size_t i = 0; i < s->n * (size_t)p->W; i++) wl[i] = 0;
    for (size_t i0 = 0; !st && i0 < n_items; i0 += (size_t)batch) {
        int B = n_items - i0 < (size_t)batch ? (int)(n_items - i0) : batch, Tb = 1;
        const item *it = items + i0;
        for (int b = 0; b < B; b++) Tb = it[b].len > Tb ? it[b].len : Tb;
        int np = 0;
        for (int b = 0; b < B; b++) {
            build_row(p, s, pos, &it[b], Tb, tokens + (size_t)b * Tb, valid + (size_t)b * Tb);
            for (int q = 0; q < p->vars[it[b].var].m; q++) where[np++] = b * Tb + pos[it[b].text] + q;
        }
        st = ss_model_body_forward(m, tokens, valid, B, Tb, 0, 0, NULL, err);
        if (!st) st = ss_lm_head_logits(m, where, np, logits, err);
        if (st) break;
        for (int r = 0; r < np; r++) { /* log-softmax denominators */
            const float *z = logits + (size_t)r * V;
            float mx = z[0];
            for (int k = 1; k < V; k++) mx = fmaxf(mx, z[k]);
            double sum = 0;
            for (int k = 0; k < V; k++) sum += exp((double)(z[k] - mx));
            lse[r] = (double)mx + log(sum);
        }
        for (int b = 0, r0 = 0; b < B; r0 += p->vars[it[b].var].m, b++)
            for (int j = 0; j < p->W; j++) {
                if (p->word_var[j] != it[b].var) continue;
                double lp = 0;
                for (int q = 0; q < word_len(p, j); q++)
                    lp += (double)logits[(size_t)(r0 + q) * V + word_ids(p, j)[q]] - lse[r0 + q];
                wl[it[b].text * p->W + j] = (float)lp;
            }
    }
    free(items);
    free(tokens);
    free(where);
    free(valid);
    free(logits);
    free(lse);
    return st;
}

/* The label scores score[n, K] before calibration: each label's
 * log-sum-exp of its words' log-probabilities. */
static ss_status label_scores(ss_prompt *p, ss_model *m, const ss_seqs *s, const int32_t *pos, int batch,
                             double *score, ss_error *err) {
    float *wl = malloc((s->n ? s->n : 1) * (size_t)p->W * sizeof(float)), *lse = malloc((size_t)p->K * sizeof(float));
    ss_status st = wl && lse ? word_logprobs(p, m, s, pos, batch, wl, err) : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < s->n; i++) {
        ss_logsumexp_groups(wl + i * p->W, p->word_label, p->W, p->K, lse, NULL);
        for (int k = 0; k < p->K; k++) score[i * p->K + k] = lse[k];
    }
    free(wl);
    free(lse);
    return st;
}

static void softmax(const double *x, int K, double *out) {
    double mx = x[0], sum = 0;
    for (int k = 1; k < K; k++) mx = fmax(mx, x[k]);
    for (int k = 0; k < K; k++) sum += (out[k] = exp(x[k] - mx));
    for (int k = 0; k < K; k++) out[k] /= sum;
}

/* log p_cf: the mean label probabilities of the content-free texts. */
static ss_status content_free_prior(ss_prompt *p, ss_model *m, double *prior, ss_error *err) {
    char *cf[] = {"N/A", ""};
    enum { NCF = 2 };
    ss_seqs s;
    int32_t *pos;
    double *score = malloc(NCF * (size_t)p->K * sizeof(double)), *q = malloc((size_t)p->K * sizeof(double));
    ss_status st = score && q ? ss_prompt_encode(p, cf, NCF, &s, &pos, err) : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) {
        st = label_scores(p, m, &s, pos, NCF, score, err);
        ss_seqs_free(&s);
        free(pos);
    }
    for (int k = 0; !st && k < p->K; k++) prior[k] = 0;
    for (int i = 0; !st && i < NCF; i++) {
        softmax(score + (size_t)i * p->K, p->K, q);
        for (int k = 0; k < p->K; k++) prior[k] += q[k] / NCF;
    }
    for (int k = 0; !st && k < p->K; k++) prior[k] = log(fmax(prior[k], 1e-30));
    free(score);
    free(q);
    return st;
}

ss_status ss_prompt_classify_seqs(ss_prompt *p, ss_model *m, const ss_seqs *s, const int32_t *pos, int batch,
                                  float *probs, ss_error *err) {
    const ss_model_config *c = ss_model_config_of(m);
    if (batch < 1) return ss_fail(err, SS_ERR_ARG, "classification batch %d must be >= 1", batch);
    if (c->kind != p->kind)
        return ss_fail(err, SS_ERR_ARG, "the prompt was made for %s, the model is %s", ss_model_kind_name(p->kind),
                       ss_model_kind_name(c->kind));
    if (c->head != SS_HEAD_LM && c->head != SS_HEAD_MLM)
        return ss_fail(err, SS_ERR_ARG, "prompt-based classification needs a language model head (lm or mlm), "
                       "not '%s'", ss_head_kind_name(c->head));
    int K = p->K;
    double *score = malloc((s->n ? s->n : 1) * (size_t)K * sizeof(double)), *prior = calloc((size_t)K, sizeof(double));
    double *x = malloc((size_t)K * sizeof(double)), *q = malloc((size_t)K * sizeof(double));
    ss_status st = score && prior && x && q ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st && p->calibrate) st = content_free_prior(p, m, prior, err);
    if (!st) st = label_scores(p, m, s, pos, batch, score, err);
    for (size_t i = 0; !st && i < s->n; i++) {
        for (int k = 0; k < K; k++) x[k] = score[i * K + k] - prior[k];
        softmax(x, K, q);
        for (int k = 0; k < K; k++) probs[i * K + k] = (float)q[k];
    }
    free(score);
    free(prior);
    free(x);
    free(q);
    return st;
}

ss_status ss_prompt_classify(ss_prompt *p, ss_model *m, char *const *texts, size_t n, int batch, float *probs,
                             ss_error *err) {
    ss_seqs s;
    int32_t *pos;
    ss_status st = ss_prompt_encode(p, texts, n, &s, &pos, err);
    if (st) return st;
    st = ss_prompt_classify_seqs(p, m, &s, pos, batch, probs, err);
    ss_seqs_free(&s);
    free(pos);
    return st;
}

/* ---- JSON ------------------------------------------------------------------------- */

char *ss_prompt_specs_to_json(const ss_prompt_spec *s, int n) {
    cJSON *o = cJSON_CreateObject(), *t = NULL;
    if (n == 1) {
        cJSON_AddStringToObject(o, "template", s[0].template_text ? s[0].template_text : "");
    } else if ((t = cJSON_AddArrayToObject(o, "template"))) {
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(t, cJSON_CreateString(s[i].template_text ? s[i].template_text : ""));
    }
    cJSON_AddStringToObject(o, "verbalizer", n > 0 && s[0].verbalizer ? s[0].verbalizer : "");
    cJSON_AddBoolToObject(o, "calibrate", n > 0 && s[0].calibrate);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

/* The template member: one string, or a non-empty array of strings; their
 * count, or -1. */
static int template_count(const cJSON *t) {
    if (cJSON_IsString(t)) return 1;
    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) < 1) return -1;
    for (const cJSON *e = t->child; e; e = e->next)
        if (!cJSON_IsString(e)) return -1;
    return cJSON_GetArraySize(t);
}

ss_status ss_prompt_specs_from_json(ss_prompt_spec **specs, int *n, const char *json, const char *source,
                                    char **keep, ss_error *err) {
    *keep = NULL;
    *specs = NULL;
    *n = 0;
    cJSON *o = cJSON_Parse(json);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "template");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "verbalizer");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "calibrate");
    int nt = cJSON_IsObject(o) ? template_count(t) : -1;
    if (nt < 1 || !cJSON_IsString(v) || (c && !cJSON_IsBool(c))) {
        cJSON_Delete(o);
        return ss_fail(err, SS_ERR_FORMAT, "%s: expected {\"template\": string or [strings], \"verbalizer\": "
                       "string, \"calibrate\": true|false}", source);
    }
    /* one block: the specs, the verbalizer, the templates */
    size_t bytes = (size_t)nt * sizeof(ss_prompt_spec) + strlen(v->valuestring) + 1;
    for (const cJSON *e = cJSON_IsArray(t) ? t->child : t; e; e = cJSON_IsArray(t) ? e->next : NULL)
        bytes += strlen(e->valuestring) + 1;
    ss_status st = (*keep = malloc(bytes)) ? SS_OK : ss_fail(err, SS_ERR_NOMEM, "out of memory");
    if (!st) {
        ss_prompt_spec *sp = (ss_prompt_spec *)(void *)*keep;
        char *pool = *keep + (size_t)nt * sizeof(ss_prompt_spec), *verb = pool;
        size_t len = strlen(v->valuestring) + 1;
        memcpy(verb, v->valuestring, len);
        pool += len;
        int i = 0;
        for (const cJSON *e = cJSON_IsArray(t) ? t->child : t; e; e = cJSON_IsArray(t) ? e->next : NULL, i++) {
            len = strlen(e->valuestring) + 1;
            memcpy(pool, e->valuestring, len);
            sp[i] = (ss_prompt_spec){pool, verb, cJSON_IsTrue(c)};
            pool += len;
        }
        *specs = sp;
        *n = nt;
    }
    cJSON_Delete(o);
    return st;
}

void ss_prompt_mean_add(double *acc, const float *probs, size_t n_values, int n_prompts) {
    for (size_t j = 0; j < n_values; j++) acc[j] += log(fmax(probs[j], FLT_MIN)) / n_prompts;
}

void ss_prompt_mean_probs(const double *acc, size_t n, int K, float *probs) {
    for (size_t t = 0; t < n; t++) {
        const double *a = acc + t * (size_t)K;
        double mx = a[0], sum = 0;
        for (int k = 1; k < K; k++) mx = fmax(mx, a[k]);
        for (int k = 0; k < K; k++) sum += exp(a[k] - mx);
        for (int k = 0; k < K; k++) probs[t * (size_t)K + k] = (float)(exp(a[k] - mx) / sum);
    }
}
