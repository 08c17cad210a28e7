/*
 * util/buf.h - a growable byte buffer for encoders. Owns its memory; af__buf_clear releases
 * it. Appends report -ENOMEM through the `failed` flag so encoders can check once at the end.
 */
#ifndef AF_UTIL_BUF_H
#define AF_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct af_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; contents are incomplete */
} af_buf;

void af__buf_init(af_buf *b);
/* Releases the memory of an embedded buffer and leaves it empty and reusable, as after
 * af__buf_init (`_clear`: the struct itself belongs to the caller; `_free` is for objects
 * this code allocated). */
void af__buf_clear(af_buf *b);
void af__buf_reset(af_buf *b); /* len = 0, keeps capacity, clears failed */
/* Slow path of af__buf_reserve: grows the allocation. */
bool af__buf_grow(af_buf *b, size_t n);

/* Makes room for n more bytes (plus one spare for a terminator); false (and failed set) on
 * allocation failure. The encoders call these per field, so the fast paths are inline. */
static inline bool af__buf_reserve(af_buf *b, size_t n)
{
    if (__builtin_expect(!b->failed && b->cap - b->len > n, 1))
        return true;
    return af__buf_grow(b, n);
}

static inline void af__buf_append(af_buf *b, const void *p, size_t n)
{
    if (n == 0 || !af__buf_reserve(b, n))
        return;
    __builtin_memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void af__buf_putc(af_buf *b, char c)
{
    if (!af__buf_reserve(b, 1))
        return;
    b->data[b->len++] = (uint8_t)c;
}

void af__buf_puts(af_buf *b, const char *s);
void af__buf_printf(af_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends a JSON string literal (quotes included), escaping per RFC 8259; invalid UTF-8 bytes
 * are replaced by U+FFFD so the output is always valid JSON. */
void af__buf_json_string(af_buf *b, const char *s, size_t len);
/* NUL-terminates without counting the NUL in len. */
void af__buf_terminate(af_buf *b);
/* The end of an encoder: NUL-terminates b and hands its bytes to *out (the caller frees
 * them). When any write failed: frees b, sets *out to NULL and returns -ENOMEM; else 0. */
int af__buf_finish(af_buf *b, char **out);

#endif
