/*
 * W3C Trace Context `tracestate`: validation, normalized storage in af_span_context, lookup
 * and the spec's mutation rules.
 *
 * Everything works on a stack array of at most 32 member views and a 513-byte scratch
 * buffer: no allocation, as this runs for every request that carries a tracestate.
 *
 * Choices where the spec leaves room:
 * - Keys: the current Level 2 grammar, ( lcalpha / DIGIT ) 0*255 keychar with keychar =
 *   lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@". '@' is an ordinary key character there
 *   (the Level 1 tenant@system split is gone), so "foo@", "foo@@bar" and long vendor parts
 *   are valid; only the first character is restricted.
 * - Values: 1-256 characters of 0x20-0x7E except ',' and '=', not ending in a space (the
 *   grammar's "0*255chr nblk-chr"); "foo=" is invalid (test suite: "foo=,bar=3" is dropped).
 * - Duplicate keys: the header is still propagated, with every later duplicate dropped.
 *   The spec allows keeping them or dropping one; keeping only the first (the leftmost is
 *   the most recently updated entry) leaves one value per key for get/put/delete.
 * - More than 32 non-empty members (duplicates included: they are list-members as sent) make
 *   the whole header invalid; empty members, which the spec allows for the sake of header
 *   joining, are dropped and not counted.
 */
#include "agentaflow/propagation.h"

#include <errno.h>
#include <string.h>

#include "trace/tracestate_int.h"

#define TS_MAX_MEMBERS 32
#define TS_KEY_MAX 256
#define TS_VALUE_MAX 256
#define TS_ENTRY_MAX (TS_KEY_MAX + 1 + TS_VALUE_MAX)
/* Entries longer than this go first when the stored value has to be shortened. */
#define TS_LONG_ENTRY 128

/* A view of one "key=value" member inside some caller buffer. */
typedef struct ts_member {
    const char *p;
    uint16_t len;  /* whole "key=value" */
    uint16_t klen; /* key part */
} ts_member;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_keychar(char c)
{
    return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

static bool keychars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_keychar(s[i]))
            return false;
    return true;
}

static bool valid_key(const char *k, size_t n)
{
    if (n == 0 || n > TS_KEY_MAX || !(is_lcalpha(k[0]) || is_digit(k[0])))
        return false;
    return keychars(k + 1, n - 1);
}

static bool valid_value(const char *v, size_t n)
{
    if (n == 0 || n > TS_VALUE_MAX || v[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

/* Splits one member (OWS already trimmed, non-empty) and validates it. */
static bool parse_member(const char *p, size_t n, ts_member *m)
{
    const char *eq = memchr(p, '=', n);
    if (!eq)
        return false;
    size_t klen = (size_t)(eq - p);
    if (!valid_key(p, klen) || !valid_value(eq + 1, n - klen - 1))
        return false;
    m->p = p;
    m->len = (uint16_t)n;
    m->klen = (uint16_t)klen;
    return true;
}

static bool same_key(const ts_member *a, const char *key, size_t klen)
{
    return a->klen == klen && memcmp(a->p, key, klen) == 0;
}

/*
 * Collects the members of comma-separated fields into m[], dropping later duplicates of a
 * key. Returns the number kept, or -1 when anything is invalid (a bad member, more than 32
 * members).
 */
static int parse_fields(const af_str *fields, size_t n_fields, ts_member m[TS_MAX_MEMBERS])
{
    size_t n = 0, seen = 0;
    for (size_t f = 0; f < n_fields; f++) {
        const char *s = fields[f].ptr;
        size_t len = fields[f].len;
        if (!s && len)
            return -1;
        size_t pos = 0;
        while (pos <= len) {
            const char *comma = len > pos ? memchr(s + pos, ',', len - pos) : NULL;
            size_t end = comma ? (size_t)(comma - s) : len;
            size_t b = pos, e = end;
            pos = end + 1;
            while (b < e && is_ows(s[b]))
                b++;
            while (e > b && is_ows(s[e - 1]))
                e--;
            if (b == e)
                continue;
            if (seen++ == TS_MAX_MEMBERS || e - b > TS_ENTRY_MAX ||
                !parse_member(s + b, e - b, &m[n]))
                return -1;
            bool dup = false;
            for (size_t i = 0; i < n && !dup; i++)
                dup = same_key(&m[i], m[n].p, m[n].klen);
            n += !dup;
        }
    }
    return (int)n;
}

/* Parses the value already stored in sc (normalized, but sc is a public struct, so it is
 * validated like any input). */
static int parse_stored(const af_span_context *sc, ts_member m[TS_MAX_MEMBERS])
{
    if (sc->trace_state_len > AF_TRACE_STATE_MAX)
        return -1;
    af_str f = {sc->trace_state, sc->trace_state_len};
    return parse_fields(&f, 1, m);
}

/*
 * Writes members in order, normalized, into sc->trace_state. When the result would exceed
 * AF_TRACE_STATE_MAX, removes whole entries: first those longer than 128 characters, then
 * from the end (both scans go right to left, since the spec puts the most recently updated
 * entries first). The first `keep` members are never removed (the one just put); when they
 * alone do not fit, returns -ENOSPC and sc is untouched.
 */
static int store(af_span_context *sc, const ts_member *m, size_t n, size_t keep)
{
    bool drop[TS_MAX_MEMBERS] = {false};
    size_t sum = 0, cnt = n;
    for (size_t i = 0; i < n; i++)
        sum += m[i].len;
#define TS_SIZE() (cnt ? sum + cnt - 1 : 0)
    for (size_t i = n; i-- > keep && TS_SIZE() > AF_TRACE_STATE_MAX;) {
        if (m[i].len > TS_LONG_ENTRY) {
            drop[i] = true;
            sum -= m[i].len;
            cnt--;
        }
    }
    for (size_t i = n; i-- > keep && TS_SIZE() > AF_TRACE_STATE_MAX;) {
        if (!drop[i]) {
            drop[i] = true;
            sum -= m[i].len;
            cnt--;
        }
    }
    if (TS_SIZE() > AF_TRACE_STATE_MAX)
        return -ENOSPC;
#undef TS_SIZE

    /* Members may point into sc->trace_state itself, so assemble aside first. */
    char buf[AF_TRACE_STATE_MAX + 1];
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            continue;
        if (w)
            buf[w++] = ',';
        memcpy(buf + w, m[i].p, m[i].len);
        w += m[i].len;
    }
    memcpy(sc->trace_state, buf, w);
    sc->trace_state[w] = '\0';
    sc->trace_state_len = (uint16_t)w;
    return 0;
}

int af__tracestate_set_fields(af_span_context *sc, const af_str *fields, size_t n_fields)
{
    ts_member m[TS_MAX_MEMBERS];
    if (!sc)
        return AF_EPARSE;
    int n = parse_fields(fields, n_fields, m);
    if (n < 0)
        return AF_EPARSE;
    /* Nothing is pinned, so store() always finds something that fits. */
    return store(sc, m, (size_t)n, 0);
}

int af_tracestate_set(af_span_context *sc, const char *value, size_t len)
{
    af_str f = {value, len};
    return af__tracestate_set_fields(sc, &f, 1);
}

int af_tracestate_get(const af_span_context *sc, const char *key, char *out, size_t out_len)
{
    ts_member m[TS_MAX_MEMBERS];
    if (!sc || !key)
        return -1;
    int n = parse_stored(sc, m);
    size_t klen = strlen(key);
    for (int i = 0; i < n; i++) {
        if (!same_key(&m[i], key, klen))
            continue;
        size_t vlen = (size_t)m[i].len - klen - 1;
        if (out && out_len) {
            size_t c = vlen < out_len - 1 ? vlen : out_len - 1;
            memcpy(out, m[i].p + klen + 1, c);
            out[c] = '\0';
        }
        return (int)vlen;
    }
    return -1;
}

int af_tracestate_put(af_span_context *sc, const char *key, const char *value)
{
    ts_member old[TS_MAX_MEMBERS], m[TS_MAX_MEMBERS];
    char entry[TS_ENTRY_MAX];
    if (!sc || !key || !value)
        return AF_EPARSE;
    size_t klen = strlen(key), vlen = strlen(value);
    if (!valid_key(key, klen) || !valid_value(value, vlen))
        return AF_EPARSE;
    int n_old = parse_stored(sc, old);
    if (n_old < 0)
        return AF_EPARSE;

    memcpy(entry, key, klen);
    entry[klen] = '=';
    memcpy(entry + klen + 1, value, vlen);
    m[0] = (ts_member){entry, (uint16_t)(klen + 1 + vlen), (uint16_t)klen};
    size_t n = 1;
    /* The updated or added key moves to the front; when the list is full, the rightmost
     * entry makes room (W3C "Mutating the tracestate field"). */
    for (int i = 0; i < n_old && n < TS_MAX_MEMBERS; i++)
        if (!same_key(&old[i], key, klen))
            m[n++] = old[i];
    return store(sc, m, n, 1);
}

int af_tracestate_delete(af_span_context *sc, const char *key)
{
    ts_member m[TS_MAX_MEMBERS];
    if (!sc || !key)
        return AF_EPARSE;
    int n = parse_stored(sc, m);
    if (n < 0)
        return AF_EPARSE;
    size_t klen = strlen(key);
    for (int i = 0; i < n; i++) {
        if (same_key(&m[i], key, klen)) {
            memmove(&m[i], &m[i + 1], (size_t)(n - i - 1) * sizeof(m[0]));
            return store(sc, m, (size_t)n - 1, 0);
        }
    }
    return AF_ENOTFOUND;
}
