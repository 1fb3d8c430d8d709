/* The Lowercase normalizer: simple (one code point to one code point) case
 * mapping with utf8proc_tolower, shared by encoding and training counts.
 *
 * ASCII dominates real text, so 8 bytes are tested at once: when none has
 * its high bit set, the bytes in 'A'..'Z' are found with two additions per
 * word (SWAR) and get bit 0x20. Everything else decodes one character. */
#include <string.h>

#include <utf8proc.h>

#include "tok_internal.h"

#define ONES 0x0101010101010101ull

/* Lowercase 8 ASCII bytes (all < 0x80, so no addition carries into the next
 * byte): b + 0x3F has its high bit set iff b >= 'A', b + 0x25 iff b > 'Z'. */
static inline uint64_t lower8(uint64_t w) {
    uint64_t ge_a = w + (0x80 - 'A') * ONES, gt_z = w + (0x7F - 'Z') * ONES;
    uint64_t upper = ge_a & ~gt_z & 0x80 * ONES;
    return w | upper >> 2; /* 0x80 >> 2 == 0x20 */
}

size_t ss_tok_lowercase(const uint8_t *s, size_t n, uint8_t *d, size_t cap, size_t *used) {
    size_t i = 0, o = 0;
    while (i < n) {
        if (n - i >= 8 && cap - o >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x80 * ONES)) {
                w = lower8(w);
                memcpy(d + o, &w, 8);
                i += 8;
                o += 8;
                continue;
            }
        }
        uint8_t b = s[i];
        if (b < 0x80) {
            if (o == cap) break;
            d[o++] = (uint8_t)(b - 'A') < 26 ? b | 0x20 : b;
            i++;
            continue;
        }
        if (cap - o < 4) break;
        int m;
        int32_t cp = ss_tok_utf8_decode(s, n, i, &m);
        if (cp < 0) d[o++] = b; /* not UTF-8: unchanged */
        else o += (size_t)utf8proc_encode_char(utf8proc_tolower(cp), d + o);
        i += (size_t)m;
    }
    *used = i;
    return o;
}
