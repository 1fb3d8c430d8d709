/* Text normalization before tokenizing (include/selfsup/textnorm.h). */
#include "selfsup/textnorm.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const ss_text_norm_names[] = {"none", "ptb", NULL};

ss_status ss_text_norm_parse(const char *s, ss_text_norm *out, ss_error *err) {
    for (int i = 0; ss_text_norm_names[i]; i++)
        if (s && strcmp(s, ss_text_norm_names[i]) == 0) {
            *out = (ss_text_norm)i;
            return SS_OK;
        }
    return ss_fail(err, SS_ERR_ARG, "unknown text normalization '%s' (choices: none, ptb)", s ? s : "");
}

/* A token of n bytes equal to one of the words (case-insensitive). */
static int is_one_of(const char *t, size_t n, const char *const *words) {
    for (; *words; words++)
        if (strlen(*words) == n && strncasecmp(t, *words, n) == 0) return 1;
    return 0;
}

static const char *const JOIN_BEFORE[] = {",", ".", "!", "?", ";", ":", "%", "...", ")", "]", "}", "-rrb-", "-rsb-",
                                          "-rcb-", "''", "'", "'s", "'re", "'ve", "'ll", "'d", "'m", "n't", NULL};
static const char *const JOIN_AFTER[] = {"(", "[", "{", "-lrb-", "-lsb-", "-lcb-", "``", "`", "$", "#", NULL};

/* The token's replacement, or NULL to keep it (with \/ and \* unescaped). */
static const char *replacement(const char *t, size_t n) {
    static const char *const MAP[][2] = {{"-lrb-", "("}, {"-rrb-", ")"}, {"-lsb-", "["}, {"-rsb-", "]"},
                                         {"-lcb-", "{"}, {"-rcb-", "}"}, {"``", "\""},  {"''", "\""},
                                         {"`", "'"}};
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++)
        if (strlen(MAP[i][0]) == n && strncasecmp(t, MAP[i][0], n) == 0) return MAP[i][1];
    return NULL;
}

/* Copy token t[0..n) to out, unescaping \/ and \*; returns the bytes written (<= n). */
static size_t copy_token(char *out, const char *t, size_t n) {
    const char *r = replacement(t, n);
    if (r) {
        size_t m = strlen(r); /* every replacement is shorter than its token */
        memmove(out, r, m);
        return m;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\\' && i + 1 < n && (t[i + 1] == '/' || t[i + 1] == '*')) i++;
        out[w++] = t[i];
    }
    return w;
}

static void detok_ptb(char *s) {
    char *out = s;
    const char *p = s;
    int first = 1, glue_next = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        const char *t = p;
        while (*p && *p != ' ' && *p != '\t') p++;
        size_t n = (size_t)(p - t);
        /* out never passes t: each token writes at most its own bytes, and at
         * most one space for the run of spaces before it */
        int join_before = is_one_of(t, n, JOIN_BEFORE), join_after = is_one_of(t, n, JOIN_AFTER);
        if (!first && !glue_next && !join_before) *out++ = ' ';
        out += copy_token(out, t, n); /* may overwrite t: its tests come first */
        glue_next = join_after;
        first = 0;
    }
    *out = '\0';
}

void ss_text_normalize(char *text, ss_text_norm how) {
    if (how == SS_TEXT_NORM_PTB) detok_ptb(text);
}

ss_status ss_texts_normalized(char *const *texts, size_t n, ss_text_norm how, char ***out, ss_error *err) {
    char **copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!(copy[i] = strdup(texts[i]))) {
            ss_texts_free(copy, i);
            return ss_fail(err, SS_ERR_NOMEM, "out of memory");
        }
        ss_text_normalize(copy[i], how);
    }
    *out = copy;
    return SS_OK;
}

void ss_texts_free(char **texts, size_t n) {
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
}
