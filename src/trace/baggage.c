/*
 * W3C Baggage: the owned entry map, header parsing (percent-decoding) and formatting
 * (percent-encoding), with the spec's limits of 64 members and 8192 bytes.
 *
 * Choices where the spec leaves room:
 * - af_baggage_set on an existing key replaces value and metadata in place: the entry keeps
 *   its position, so re-setting a key never reorders what goes out on the wire.
 * - Limits are measured on the normalized wire form (what af_baggage_format writes): a member
 *   is taken while the baggage stays within 64 members and 8192 bytes, and skipped whole
 *   otherwise, so a parsed baggage always formats completely and identically.
 * - A member is skipped as malformed when: it has no '=', its key is not an RFC 7230 token,
 *   its value has a character outside baggage-octet or a broken percent escape, it decodes to
 *   a NUL byte (which a C string cannot carry), or one of its properties is malformed
 *   (including an empty one, as in "k=v;").
 * - Properties are kept as one opaque metadata string, normalized without OWS
 *   ("p1=v1;p2"), not percent-decoded (OpenTelemetry treats metadata as opaque).
 * - Values are percent-encoded on output for every byte outside baggage-octet, plus '%' (the
 *   spec requires it) and '=' (allowed either way; encoding it protects parsers that split a
 *   member at its last '=').
 */
#include "agentaflow/propagation.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

typedef struct bg_entry {
    char *key;
    char *value;
    char *meta;  /* NULL when none */
    size_t wire; /* bytes of "key=encoded-value[;meta]" */
} bg_entry;

struct af_baggage {
    bg_entry *e;
    size_t n, cap;
};

/* ---------------------------------------------------------------------------------------- */
/* Character classes.                                                                        */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
static bool is_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static bool is_octets(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_octet((unsigned char)s[i]))
            return false;
    return true;
}

/* Bytes that go out unescaped in a value. */
static bool is_plain(unsigned char c)
{
    return is_octet(c) && c != '%' && c != '=';
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* ---------------------------------------------------------------------------------------- */
/* UTF-8.                                                                                    */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Replaces every ill-formed sequence of s[0..n) by U+FFFD. Returns s itself when it is
 * already valid, else a new string (s is freed); NULL on allocation failure (s freed). */
static char *utf8_sanitize(char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            break;
        i += k;
    }
    if (i == n)
        return s;
    char *out = malloc(3 * n + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    memcpy(out, s, i);
    size_t w = i;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(out + w, s + i, k);
            w += k;
            i += k;
        } else {
            /* One replacement per bad byte: simple, and what most decoders do for bytes
             * that cannot start a sequence. */
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        }
    }
    out[w] = '\0';
    free(s);
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* Values and properties.                                                                    */

static size_t encoded_len(const char *v)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        n += is_plain(*p) ? 1 : 3;
    return n;
}

static size_t encode(const char *v, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (is_plain(*p)) {
            out[w++] = (char)*p;
        } else {
            out[w++] = '%';
            out[w++] = hex[*p >> 4];
            out[w++] = hex[*p & 0x0f];
        }
    }
    return w;
}

/* Percent-decodes a value (OWS already trimmed) into a new string. Returns 0, AF_EPARSE for
 * a malformed value or -ENOMEM. */
static int decode_value(const char *v, size_t n, char **out)
{
    if (!is_octets(v, n))
        return AF_EPARSE;
    char *d = malloc(n + 1);
    if (!d)
        return -ENOMEM;
    size_t w;
    if (af__pct_decode(v, n, false, d, n + 1, &w) != 0) {
        free(d);
        return AF_EPARSE;
    }
    d = utf8_sanitize(d, w);
    if (!d)
        return -ENOMEM;
    *out = d;
    return 0;
}

/*
 * Validates a ';'-separated property list (without the leading ';') and returns it
 * normalized: OWS removed around keys, '=' and values.
 * Returns 0, AF_EPARSE or -ENOMEM.
 */
static int normalize_meta(const char *s, size_t n, char **out)
{
    *out = NULL;
    char *m = malloc(n + 1);
    if (!m)
        return -ENOMEM;
    size_t w = 0, pos = 0;
    while (pos <= n) {
        const char *semi = n > pos ? memchr(s + pos, ';', n - pos) : NULL;
        size_t end = semi ? (size_t)(semi - s) : n;
        const char *p = s + pos;
        size_t plen = end - pos;
        pos = end + 1;
        const char *eq = memchr(p, '=', plen);
        const char *k = p, *v = NULL;
        size_t klen = eq ? (size_t)(eq - p) : plen, vlen = 0;
        trim(&k, &klen);
        if (eq) {
            v = eq + 1;
            vlen = (size_t)(p + plen - v);
            trim(&v, &vlen);
        }
        if (!is_token(k, klen) || (eq && !is_octets(v, vlen))) {
            free(m);
            return AF_EPARSE;
        }
        if (w)
            m[w++] = ';';
        memcpy(m + w, k, klen);
        w += klen;
        if (eq) {
            m[w++] = '=';
            memcpy(m + w, v, vlen);
            w += vlen;
        }
    }
    m[w] = '\0';
    *out = m;
    return 0;
}

static size_t entry_wire(const char *key, const char *value, const char *meta)
{
    size_t n = strlen(key) + 1 + encoded_len(value);
    if (meta)
        n += 1 + strlen(meta);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* The map.                                                                                  */

static void entry_free(bg_entry *e)
{
    free(e->key);
    free(e->value);
    free(e->meta);
}

static bg_entry *find(const af_baggage *b, const char *key, size_t klen)
{
    for (size_t i = 0; i < b->n; i++)
        if (strncmp(b->e[i].key, key, klen) == 0 && b->e[i].key[klen] == '\0')
            return &b->e[i];
    return NULL;
}

/* Inserts or replaces, taking ownership of all three strings (freed on failure; meta may be
 * NULL for none). */
static int put_owned(af_baggage *b, char *key, char *value, char *meta)
{
    bg_entry ne = {key, value, meta, 0};
    ne.wire = entry_wire(ne.key, ne.value, ne.meta);
    bg_entry *old = find(b, key, strlen(key));
    if (old) {
        entry_free(old);
        *old = ne;
        return 0;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        bg_entry *e = realloc(b->e, cap * sizeof(*e));
        if (!e) {
            entry_free(&ne);
            return -ENOMEM;
        }
        b->e = e;
        b->cap = cap;
    }
    b->e[b->n++] = ne;
    return 0;
}

int af_baggage_new(af_baggage **out)
{
    if (!out)
        return -EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void af_baggage_free(af_baggage *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        entry_free(&b->e[i]);
    free(b->e);
    free(b);
}

int af_baggage_copy(const af_baggage *b, af_baggage **out)
{
    af_baggage *c = NULL;
    if (!b || !out)
        return -EINVAL;
    int rc = af_baggage_new(&c);
    if (rc)
        goto fail;
    for (size_t i = 0; i < b->n; i++) {
        rc = af_baggage_set(c, b->e[i].key, b->e[i].value, b->e[i].meta);
        if (rc)
            goto fail;
    }
    *out = c;
    return 0;
fail:
    af_baggage_free(c);
    return rc;
}

int af_baggage_set(af_baggage *b, const char *key, const char *value, const char *metadata)
{
    char *k = NULL, *v = NULL, *m = NULL;
    if (!b || !key || !value || !is_token(key, strlen(key)))
        return -EINVAL;
    int rc = -ENOMEM;
    if (metadata && metadata[0]) {
        rc = normalize_meta(metadata, strlen(metadata), &m);
        if (rc)
            return rc == AF_EPARSE ? -EINVAL : rc;
        rc = -ENOMEM;
    }
    k = af__strdup(key);
    v = af__strdup(value);
    if (!k || !v)
        goto fail;
    return put_owned(b, k, v, m);
fail:
    free(k);
    free(v);
    free(m);
    return rc;
}

const char *af_baggage_get(const af_baggage *b, const char *key)
{
    if (!b || !key)
        return NULL;
    bg_entry *e = find(b, key, strlen(key));
    return e ? e->value : NULL;
}

int af_baggage_remove(af_baggage *b, const char *key)
{
    if (!b || !key)
        return -EINVAL;
    bg_entry *e = find(b, key, strlen(key));
    if (!e)
        return AF_ENOTFOUND;
    entry_free(e);
    size_t i = (size_t)(e - b->e);
    memmove(e, e + 1, (b->n - i - 1) * sizeof(*e));
    b->n--;
    return 0;
}

size_t af_baggage_count(const af_baggage *b)
{
    return b ? b->n : 0;
}

void af_baggage_at(const af_baggage *b, size_t i, const char **key, const char **value,
                   const char **metadata)
{
    bool ok = b && i < b->n;
    if (key)
        *key = ok ? b->e[i].key : NULL;
    if (value)
        *value = ok ? b->e[i].value : NULL;
    if (metadata)
        *metadata = !ok ? NULL : b->e[i].meta ? b->e[i].meta : "";
}

/* ---------------------------------------------------------------------------------------- */
/* Header value.                                                                             */

/* Bytes all current entries take on the wire. Entries set through the API may already be
 * over the limits (format skips those); counting them anyway only makes parse stricter. */
static size_t wire_total(const af_baggage *b)
{
    size_t total = b->n ? b->n - 1 : 0;
    for (size_t i = 0; i < b->n; i++)
        total += b->e[i].wire;
    return total;
}

/* Parses one member (OWS trimmed, non-empty) into owned strings. 0, AF_EPARSE or -ENOMEM. */
static int parse_member(const char *s, size_t n, char **key, char **value, char **meta)
{
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return AF_EPARSE;
    const char *k = s, *v = eq + 1;
    size_t klen = (size_t)(eq - s), rest = n - klen - 1;
    trim(&k, &klen);
    if (!is_token(k, klen))
        return AF_EPARSE;
    const char *semi = memchr(v, ';', rest);
    size_t vlen = semi ? (size_t)(semi - v) : rest;
    trim(&v, &vlen);
    *key = NULL;
    *value = NULL;
    *meta = NULL;
    int rc = decode_value(v, vlen, value);
    if (rc)
        return rc;
    if (semi) {
        rc = normalize_meta(semi + 1, (size_t)(s + n - semi - 1), meta);
        if (rc)
            goto fail;
    }
    rc = -ENOMEM;
    *key = af__strndup(k, klen);
    if (!*key)
        goto fail;
    return 0;
fail:
    free(*value);
    free(*meta);
    *value = NULL;
    *meta = NULL;
    return rc;
}

int af_baggage_parse(af_baggage *b, const char *value, size_t len)
{
    if (!b || (!value && len))
        return -EINVAL;
    if (len == 0)
        return 0;
    size_t total = wire_total(b);
    int added = 0;
    size_t pos = 0;
    while (pos <= len) {
        const char *comma = len > pos ? memchr(value + pos, ',', len - pos) : NULL;
        size_t end = comma ? (size_t)(comma - value) : len;
        const char *s = value + pos;
        size_t n = end - pos;
        pos = end + 1;
        trim(&s, &n);
        if (n == 0)
            continue;
        char *k, *v, *m;
        int rc = parse_member(s, n, &k, &v, &m);
        if (rc == -ENOMEM)
            return added ? added : rc;
        if (rc)
            continue;
        size_t wire = entry_wire(k, v, m);
        bg_entry *old = find(b, k, strlen(k));
        size_t next = old ? total - old->wire + wire : total + (b->n ? 1 : 0) + wire;
        if ((!old && b->n >= AF_BAGGAGE_MAX_MEMBERS) || next > AF_BAGGAGE_MAX_BYTES) {
            free(k);
            free(v);
            free(m);
            continue;
        }
        rc = put_owned(b, k, v, m);
        if (rc)
            return added ? added : rc;
        total = next;
        added++;
    }
    return added;
}

size_t af_baggage_format(const af_baggage *b, char *out, size_t out_len)
{
    size_t need = 0, w = 0, kept = 0;
    bool full = !out || out_len == 0;
    for (size_t i = 0; b && i < b->n && kept < AF_BAGGAGE_MAX_MEMBERS; i++) {
        const bg_entry *e = &b->e[i];
        size_t add = e->wire + (kept ? 1 : 0);
        if (need + add > AF_BAGGAGE_MAX_BYTES)
            continue;
        need += add;
        kept++;
        /* Once one member did not fit in `out`, stop writing so that out always holds a
         * prefix of the full value made of whole members. */
        if (full || w + add >= out_len) {
            full = true;
            continue;
        }
        if (w)
            out[w++] = ',';
        size_t klen = strlen(e->key);
        memcpy(out + w, e->key, klen);
        w += klen;
        out[w++] = '=';
        w += encode(e->value, out + w);
        if (e->meta) {
            out[w++] = ';';
            size_t mlen = strlen(e->meta);
            memcpy(out + w, e->meta, mlen);
            w += mlen;
        }
    }
    if (out && out_len)
        out[w] = '\0';
    return need;
}
