/* Growable byte buffer used by the encoders and JSON writers. */
#include "util/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void af__buf_init(af_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void af__buf_clear(af_buf *b)
{
    free(b->data);
    af__buf_init(b);
}

void af__buf_reset(af_buf *b)
{
    b->len = 0;
    b->failed = false;
}

bool af__buf_grow(af_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->cap - b->len > n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void af__buf_puts(af_buf *b, const char *s)
{
    af__buf_append(b, s, strlen(s));
}

void af__buf_printf(af_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        af__buf_append(b, small, (size_t)n);
        return;
    }
    if (!af__buf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes are not valid UTF-8. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF)
        return 0;
    return n;
}

void af__buf_json_string(af_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    if (!af__buf_reserve(b, len + 2))
        return;
    af__buf_putc(b, '"');
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            af__buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n == 0) {
                af__buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                af__buf_append(b, p + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            af__buf_append(b, "\\\"", 2);
            break;
        case '\\':
            af__buf_append(b, "\\\\", 2);
            break;
        case '\n':
            af__buf_append(b, "\\n", 2);
            break;
        case '\r':
            af__buf_append(b, "\\r", 2);
            break;
        case '\t':
            af__buf_append(b, "\\t", 2);
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            af__buf_append(b, esc, 6);
        }
        }
        i++;
    }
    af__buf_putc(b, '"');
}

void af__buf_terminate(af_buf *b)
{
    if (af__buf_reserve(b, 1))
        b->data[b->len] = '\0';
}

int af__buf_finish(af_buf *b, char **out)
{
    af__buf_terminate(b);
    if (b->failed) {
        af__buf_clear(b);
        *out = NULL;
        return -ENOMEM;
    }
    *out = (char *)b->data;
    return 0;
}
