/* Helpers shared by the GPU files: hash map, error buffers, JSON scalars, tracer lookup. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu_int.h"
#include "util/timeutil.h"

/* A unique address marks deleted slots so probing continues past them. */
static const char tombstone[1];
#define TOMB ((const char *)tombstone)

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

void af__gpu_map_free(af_gpu_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static af_gpu_map_entry *lookup(const af_gpu_map *m, const char *key, uint32_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        af_gpu_map_entry *e = &m->slots[i];
        if (!e->key)
            return NULL;
        if (e->key != TOMB && e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
}

void *af__gpu_map_get(const af_gpu_map *m, const char *key)
{
    af_gpu_map_entry *e = lookup(m, key, hash_str(key));
    return e ? e->val : NULL;
}

static int grow(af_gpu_map *m)
{
    /* Rehash when live + tombstones pass 70 %; double only when live entries need it. */
    size_t ncap = m->cap ? m->cap : 16;
    while ((m->len + 1) * 10 >= ncap * 5)
        ncap *= 2;
    af_gpu_map_entry *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        af_gpu_map_entry *e = &m->slots[i];
        if (!e->key || e->key == TOMB)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->len;
    return 0;
}

int af__gpu_map_put(af_gpu_map *m, const char *key, void *val)
{
    uint32_t h = hash_str(key);
    af_gpu_map_entry *e = lookup(m, key, h);
    if (e) {
        e->key = key;
        e->val = val;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (af_gpu_map_entry){key, val, h};
    m->len++;
    return 0;
}

void af__gpu_map_del(af_gpu_map *m, const char *key)
{
    af_gpu_map_entry *e = lookup(m, key, hash_str(key));
    if (!e)
        return;
    e->key = TOMB;
    e->val = NULL;
    m->len--;
}

void af__gpu_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void af__gpu_json_time(af_buf *b, uint64_t ns)
{
    char ts[AF_RFC3339_MAX];
    af__fmt_rfc3339(ns, 9, ts);
    af__buf_printf(b, "\"%s\"", ts);
}

void af__gpu_json_num(af_buf *b, double v)
{
    if (!isfinite(v))
        v = 0;
    /* The shortest of %.15g / %.17g that reads back exactly: 0.1 stays "0.1". */
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    af__buf_puts(b, tmp);
}

af_tracer *af__gpu_tracer(const af_gpu_tracing *t, af_trace_component c)
{
    if (t->tracing)
        return af_tracing_tracer_for(t->tracing, c);
    return t->tracer;
}
