/* A reference lowercasing for the tokenizer tests, written independently of
 * the library: utf8proc's simple case mapping of every valid character,
 * other bytes as they are. out needs 2n bytes (a character never more than
 * doubles). */
#ifndef SELFSUP_TESTS_REF_LOWER_H
#define SELFSUP_TESTS_REF_LOWER_H

#include <stddef.h>
#include <utf8proc.h>

static inline size_t ref_lower(const char *s, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t m = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(n - i), &cp);
        if (m <= 0) { out[o++] = s[i++]; continue; }
        o += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)out + o);
        i += (size_t)m;
    }
    return o;
}

#endif
