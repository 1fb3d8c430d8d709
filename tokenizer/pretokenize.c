/* GPT-2 pre-tokenization without a regex engine. The pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * is leftmost-first, so at each position: a contraction if one starts here;
 * else an optional U+0020 followed by a maximal run of one class (letter,
 * number, other); else a whitespace run, which gives back its last character
 * when a non-space follows (that character then starts the next piece: as
 * the optional space of " ?X+" when it is U+0020, as a lone \s+ otherwise).
 * ASCII is classified by a table; other characters via utf8proc. */
#include <utf8proc.h>

#include "selfsup/tokenizer.h"
#include "tok_internal.h"

enum { L, N, S, O }; /* letter, number, white space, other */

static const uint8_t ascii_class[128] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O,
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O,
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O,
};

/* Unicode White_Space outside ASCII (Python's isspace differs: it also has
 * U+001C..U+001F; the reference ids follow Rust regex, i.e. White_Space). */
static int non_ascii_space(int32_t cp) {
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int unicode_class(int32_t cp) {
    if (cp < 0) return O; /* invalid UTF-8 byte */
    if (non_ascii_space(cp)) return S;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return L;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return N;
    default:
        return O;
    }
}

/* Class of the character at s[i]; *n = its length in bytes. */
static inline int class_at(const uint8_t *s, size_t len, size_t i, int *n) {
    if (s[i] < 0x80) { *n = 1; return ascii_class[s[i]]; }
    return unicode_class(ss_tok_utf8_decode(s, len, i, n));
}

/* End of the maximal run of class k starting at i. */
static size_t run_end(const uint8_t *s, size_t len, size_t i, int k) {
    while (i < len) {
        if (s[i] < 0x80) {
            if (ascii_class[s[i]] != k) break;
            i++;
        } else {
            int n;
            if (unicode_class(ss_tok_utf8_decode(s, len, i, &n)) != k) break;
            i += (size_t)n;
        }
    }
    return i;
}

static size_t contraction(const uint8_t *s, size_t len, size_t pos) {
    if (pos + 1 >= len) return 0;
    uint8_t c = s[pos + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
    if (pos + 2 >= len) return 0;
    uint8_t d = s[pos + 2];
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
    return 0;
}

size_t ss_pretoken_next(const char *text, size_t len, size_t pos) {
    const uint8_t *s = (const uint8_t *)text;
    if (s[pos] == '\'') {
        size_t c = contraction(s, len, pos);
        if (c) return pos + c;
    }
    int n, k = class_at(s, len, pos, &n);
    if (s[pos] == ' ' && pos + 1 < len) {
        int n1, k1 = class_at(s, len, pos + 1, &n1);
        if (k1 != S) return run_end(s, len, pos + 1 + (size_t)n1, k1);
    }
    if (k != S) return run_end(s, len, pos + (size_t)n, k);
    /* White space: \s+(?!\S) backs off one character before a non-space;
     * a single white-space character before a non-space is \s+. */
    size_t last = pos, i = pos + (size_t)n;
    while (i < len) {
        int m;
        if (class_at(s, len, i, &m) != S) break;
        last = i;
        i += (size_t)m;
    }
    if (i == len) return len;
    return last > pos ? last : i;
}
