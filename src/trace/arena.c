/*
 * Per-record bump allocation. The inline arena covers ordinary spans; a span with long
 * strings or many attributes grows by malloc'd chunks that are freed when the record is
 * recycled.
 */
#include <stdlib.h>
#include <string.h>

#include "trace/span_int.h"
#include "util/str.h"

#define CHUNK_MIN 4096

void *af__arena_grow(af_span_rec *r, size_t size)
{
    size_t want = size > CHUNK_MIN ? size : CHUNK_MIN;
    af_arena_chunk *c = malloc(sizeof(af_arena_chunk) + 16 + want);
    if (!c)
        return NULL;
    c->next = r->chunks;
    c->size = want;
    r->chunks = c;
    char *base = (char *)(c + 1);
    base += (16 - ((uintptr_t)base & 15)) & 15;
    r->arena_pos = base + size;
    r->arena_left = want - size;
    return base;
}

void af__arena_reset(af_span_rec *r)
{
    af_arena_chunk *c = r->chunks;
    while (c) {
        af_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    r->chunks = NULL;
    r->arena_pos = r->arena;
    r->arena_left = sizeof(r->arena);
}

int af__arena_copy_array(af_span_rec *r, af_attr *out, const af_attr *in, uint32_t max_chars)
{
    switch (in->type) {
    case AF_VAL_STRING_ARRAY: {
        size_t n = in->v.arr.items ? in->v.arr.count : 0;
        const char *const *src = in->v.arr.items;
        const char **items = af__arena_alloc(r, (n ? n : 1) * sizeof(char *));
        if (!items)
            return -1;
        for (size_t i = 0; i < n; i++) {
            const char *e = src[i] ? src[i] : "";
            size_t len = strlen(e);
            if (max_chars != AF_LIMIT_UNLIMITED && len > max_chars)
                len = af__utf8_prefix(e, len, max_chars);
            if (!(items[i] = af__arena_strdup(r, e, len)))
                return -1;
        }
        out->v.arr.items = items;
        out->v.arr.count = n;
        return 0;
    }
    case AF_VAL_BOOL_ARRAY:
    case AF_VAL_INT_ARRAY:
    case AF_VAL_DOUBLE_ARRAY: {
        size_t elem = in->type == AF_VAL_BOOL_ARRAY  ? sizeof(bool)
                      : in->type == AF_VAL_INT_ARRAY ? sizeof(int64_t)
                                                     : sizeof(double);
        size_t n = in->v.arr.items ? in->v.arr.count : 0;
        void *items = af__arena_alloc(r, n ? n * elem : 1);
        if (!items)
            return -1;
        if (n)
            memcpy(items, in->v.arr.items, n * elem);
        out->v.arr.items = items;
        out->v.arr.count = n;
        return 0;
    }
    default:
        return -1;
    }
}
