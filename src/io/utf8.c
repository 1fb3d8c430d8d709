/* Strict UTF-8 validation, shared by the readers that must reject bad text
 * (safetensors headers, labelled files); replacing invalid bytes with U+FFFD
 * for JSON output; printable excerpts of untrusted bytes for messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "selfsup/io.h"

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
int ss_utf8_valid(const void *data, size_t n) {
    const unsigned char *s = data;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!len || c > 0xF4 || i + len > n) return 0;
        unsigned c1 = s[i + 1];
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) ||
            (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

size_t ss_utf8_seq_len(const void *data, size_t n) {
    const unsigned char *s = data;
    if (!n) return 0;
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || c > 0xF4 || len > n) return 0;
    if (len == 1) return 1;
    unsigned c1 = s[1];
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 > 0x8F)) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return len;
}

char *ss_utf8_sanitize(const void *data, size_t n) {
    const unsigned char *s = data;
    char *out = malloc(3 * n + 1), *o = out; /* each byte: itself or the 3 bytes of U+FFFD */
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = ss_utf8_seq_len(s + i, n - i);
        if (len) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}

const char *ss_quote_bytes(char *buf, size_t cap, const void *data, size_t n, size_t max) {
    const unsigned char *s = data;
    size_t k = 0, i = 0;
    if (cap < 8) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    while (i < n && i < max) {
        size_t len = ss_utf8_seq_len(s + i, n - i);
        if (i + len > max) break; /* a character is not split */
        char piece[8];
        size_t m;
        unsigned c = s[i];
        int control = len == 1 ? (c < 0x20 || c == 0x7F) : len == 2 && c == 0xC2 && s[i + 1] < 0xA0; /* C0, DEL, C1 */
        if (len == 0 || control) m = (size_t)snprintf(piece, sizeof piece, "\\x%02X", c), len = 1;
        else if (c == '\\') m = 2, memcpy(piece, "\\\\", 2);
        else m = len, memcpy(piece, s + i, len);
        if (k + m + 4 > cap) break; /* room for "..." and the NUL */
        memcpy(buf + k, piece, m);
        k += m;
        i += len;
    }
    if (i < n) memcpy(buf + k, "...", 3), k += 3;
    buf[k] = '\0';
    return buf;
}
