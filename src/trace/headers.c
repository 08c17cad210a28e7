/*
 * af_headers: an owned list of HTTP header fields in arrival order, plus the carrier that
 * lets the propagators read and write it. Names compare case-insensitively (RFC 9110).
 */
#include "agentaflow/propagation.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/str.h"

typedef struct hdr_field {
    char *name;
    char *value;
} hdr_field;

struct af_headers {
    hdr_field *f;
    size_t n, cap;
};

int af_headers_new(af_headers **out)
{
    if (!out)
        return -EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void af_headers_free(af_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->f[i].name);
        free(h->f[i].value);
    }
    free(h->f);
    free(h);
}

int af_headers_add(af_headers *h, const char *name, const char *value)
{
    if (!h || !name || !value)
        return -EINVAL;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        hdr_field *f = realloc(h->f, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;
        h->f = f;
        h->cap = cap;
    }
    char *n = af__strdup(name), *v = af__strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    h->f[h->n++] = (hdr_field){n, v};
    return 0;
}

int af_headers_set(af_headers *h, const char *name, const char *value)
{
    if (!h || !name || !value)
        return -EINVAL;
    size_t first = h->n;
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->f[i].name, name) == 0) {
            first = i;
            break;
        }
    }
    if (first == h->n)
        return af_headers_add(h, name, value);

    /* The first match takes the new name and value in place (so the field keeps its
     * position); later matches are removed. */
    char *n = af__strdup(name), *v = af__strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    free(h->f[first].name);
    free(h->f[first].value);
    h->f[first] = (hdr_field){n, v};
    size_t w = first + 1;
    for (size_t i = first + 1; i < h->n; i++) {
        if (strcasecmp(h->f[i].name, name) == 0) {
            free(h->f[i].name);
            free(h->f[i].value);
        } else {
            h->f[w++] = h->f[i];
        }
    }
    h->n = w;
    return 0;
}

const char *af_headers_get(const af_headers *h, const char *name)
{
    if (!h || !name)
        return NULL;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->f[i].name, name) == 0)
            return h->f[i].value;
    return NULL;
}

size_t af_headers_count(const af_headers *h)
{
    return h ? h->n : 0;
}

void af_headers_at(const af_headers *h, size_t i, const char **name, const char **value)
{
    bool ok = h && i < h->n;
    if (name)
        *name = ok ? h->f[i].name : NULL;
    if (value)
        *value = ok ? h->f[i].value : NULL;
}

static size_t carrier_get_all(void *self, const char *key, af_str *out, size_t cap)
{
    const af_headers *h = self;
    size_t found = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->f[i].name, key) != 0)
            continue;
        if (found < cap)
            out[found] = (af_str){h->f[i].value, strlen(h->f[i].value)};
        found++;
    }
    return found;
}

static int carrier_set(void *self, const char *key, const char *value)
{
    return af_headers_set(self, key, value);
}

af_carrier af_headers_carrier(af_headers *h)
{
    return (af_carrier){carrier_get_all, carrier_set, h};
}
