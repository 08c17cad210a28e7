/* Small string helpers. */
#include "util/str.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *af__strdup(const char *s)
{
    return s ? af__strndup(s, strlen(s)) : NULL;
}

char *af__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t af__strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

bool af__str_ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}

size_t af__utf8_prefix(const char *s, size_t len, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (i < len && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + n > len)
            n = len - i;
        /* A sequence with a broken continuation counts as single bytes so we never run past
         * an invalid lead byte's claimed length. */
        for (size_t k = 1; k < n; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) {
                n = 1;
                break;
            }
        }
        i += n;
        chars++;
    }
    return i;
}

int af__pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap, size_t *out_len)
{
    if (cap == 0)
        return -ENOSPC;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+' && plus_space) {
            ch = ' ';
        } else if (ch == '%') {
            int h = n - i >= 3 ? af__hex_digit(s[i + 1]) : -1;
            int l = h >= 0 ? af__hex_digit(s[i + 2]) : -1;
            if (l < 0 || (h | l) == 0) {
                /* %00 would silently cut the C string short. */
                if (out_len)
                    *out_len = i;
                return -EINVAL;
            }
            ch = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -ENOSPC;
        out[o++] = ch;
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return 0;
}

char *af__pct_decode_trimmed(const char *s, size_t n, bool *bad)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (af__pct_decode(s, n, false, out, n + 1, NULL) != 0) {
        free(out);
        *bad = true;
        return NULL;
    }
    return out;
}

int af__parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s)
        return -EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int af__parse_decimal(const char *s, double *out)
{
    const char *p = s;
    size_t whole = strspn(p, "0123456789");
    p += whole;
    if (*p == '.') {
        size_t frac = strspn(p + 1, "0123456789");
        if (frac == 0)
            return -EINVAL;
        p += 1 + frac;
    }
    if (whole == 0 || *p || p - s > 32)
        return -EINVAL;
    /* Only digits and one '.' reach strtod, so no sign, hex, exponent, inf or nan. */
    *out = strtod(s, NULL);
    return 0;
}
