/*
 * Configuration diagnostics and the small text helpers their messages need (quoting,
 * edit distance for "did you mean", durations, URL scrubbing).
 */
#define AF_LOG_COMPONENT "config"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/log.h"
#include "config/config_int.h"
#include "util/buf.h"
#include "util/str.h"

void af_config_diag_init(af_config_diag *d)
{
    memset(d, 0, sizeof *d);
}

void af_config_diag_free(af_config_diag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_entries; i++) {
        free(d->entries[i].message);
        free(d->entries[i].key);
    }
    free(d->entries);
    af_config_diag_init(d);
}

const char *af_diag_severity_name(af_diag_severity s)
{
    switch (s) {
    case AF_DIAG_ERROR:
        return "error";
    case AF_DIAG_WARNING:
        return "warning";
    case AF_DIAG_INFO:
        return "info";
    }
    return "?";
}

char *af_config_diag_format(const af_config_diag *d)
{
    af_buf b;
    af__buf_init(&b);
    for (size_t i = 0; i < d->n_entries; i++)
        af__buf_printf(&b, "%s: %s\n", af_diag_severity_name(d->entries[i].severity),
                       d->entries[i].message);
    if (d->suppressed)
        af__buf_printf(&b, "(%zu more not shown)\n", d->suppressed);
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_clear(&b);
        return NULL;
    }
    if (!b.data)
        return af__strdup("");
    return (char *)b.data;
}

int af__diag_add(af_config_diag *d, af_diag_severity sev, const char *src, uint32_t line,
                 uint32_t column, const char *key, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    char msg[1400];
    size_t used = 0;
    if (src && line)
        used = (size_t)snprintf(msg, sizeof msg, "%s:%u:%u: ", src, line, column);
    else if (src)
        used = (size_t)snprintf(msg, sizeof msg, "%s: ", src);
    snprintf(msg + used, sizeof msg - used, "%s%s%s", key ? key : "", key ? ": " : "", text);

    if (!d) {
        af_log(sev == AF_DIAG_ERROR     ? AF_LOG_ERROR
               : sev == AF_DIAG_WARNING ? AF_LOG_WARN
                                        : AF_LOG_INFO,
               "%s", msg);
        return 0;
    }
    if (sev == AF_DIAG_ERROR)
        d->n_errors++;
    else if (sev == AF_DIAG_WARNING)
        d->n_warnings++;
    else
        d->n_infos++;
    if (d->n_entries >= AF_CONFIG_DIAG_MAX) {
        d->suppressed++;
        return 0;
    }
    if (d->n_entries == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        af_config_diag_entry *grown = realloc(d->entries, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        d->entries = grown;
        d->cap = cap;
    }
    af_config_diag_entry *e = &d->entries[d->n_entries];
    e->severity = sev;
    e->line = line;
    e->column = column;
    e->message = af__strdup(msg);
    e->key = key ? af__strdup(key) : NULL;
    if (!e->message || (key && !e->key)) {
        free(e->message);
        free(e->key);
        return -ENOMEM;
    }
    d->n_entries++;
    return 0;
}

void af__config_quote(const char *s, size_t len, char *out, size_t out_len)
{
    /* Escape into a bounded excerpt; the ellipsis marks a cut so a long value never floods
     * the terminal. */
    enum { MAX_SHOWN = 60 };
    size_t o = 0;
    if (out_len < 8) {
        if (out_len)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    size_t shown = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t tn;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tn = 2;
        } else if (c < 0x20 || c == 0x7f) {
            tn = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
        } else {
            tmp[0] = (char)c;
            tn = 1;
        }
        if (shown >= MAX_SHOWN || o + tn + 5 > out_len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, tmp, tn);
        o += tn;
        shown++;
    }
    out[o++] = '"';
    out[o] = '\0';
}

unsigned af__config_edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Optimal string alignment over keys of at most 127 bytes (longer ones are never close
     * to a table key anyway). Three rolling rows keep it allocation-free. */
    enum { MAXK = 128 };
    if (alen >= MAXK || blen >= MAXK)
        return 255;
    unsigned rows[3][MAXK];
    unsigned *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= blen; j++)
        p[j] = (unsigned)j;
    for (size_t i = 1; i <= alen; i++) {
        c[0] = (unsigned)i;
        for (size_t j = 1; j <= blen; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        unsigned *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[blen] > 255 ? 255 : p[blen];
}

void af__config_safe_url(const char *url, char *out, size_t out_len)
{
    if (!out_len)
        return;
    out[0] = '\0';
    if (!url)
        return;
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    af_buf b;
    af__buf_init(&b);
    af__buf_append(&b, url, (size_t)(auth - url));
    const char *host = at ? at + 1 : auth;
    const char *path = auth + auth_len;
    af__buf_append(&b, host, (size_t)(path - host));
    size_t path_len = strcspn(path, "?#");
    af__buf_append(&b, path, path_len);
    if (path[path_len] == '?')
        af__buf_puts(&b, "?[redacted]");
    af__buf_terminate(&b);
    if (!b.failed && b.data)
        af__strlcpy(out, (const char *)b.data, out_len);
    af__buf_clear(&b);
}

/* ---------------------------------------------------------------------------------------- */
/* Durations.                                                                                */

/* One term of a duration: a number (with an optional fraction) and its unit, read from *pp
 * (advanced past it); *part gets it in nanoseconds, at most limit_ns. 0 or AF_EPARSE. */
static int parse_term(const char **pp, uint64_t limit_ns, uint64_t *part)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ull},           {"us", 1000ull},
        {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
        {"ms", 1000000ull},     {"s", 1000000000ull},
        {"m", 60000000000ull},  {"h", 3600000000000ull},
    };
    uint64_t whole = 0;
    size_t nd = 0;
    while (**pp >= '0' && **pp <= '9') {
        if (whole > limit_ns / 10)
            return AF_EPARSE;
        whole = whole * 10 + (uint64_t)(**pp - '0');
        (*pp)++;
        nd++;
    }
    double frac = 0.0, scale = 1.0;
    size_t nf = 0;
    if (**pp == '.') {
        (*pp)++;
        while (**pp >= '0' && **pp <= '9') {
            if (nf < 18) {
                scale *= 10.0;
                frac += (**pp - '0') / scale;
            }
            (*pp)++;
            nf++;
        }
    }
    if (nd == 0 && nf == 0)
        return AF_EPARSE;
    uint64_t unit = 0;
    size_t best = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t ul = strlen(units[i].name);
        /* Longest match wins, so "ms" is not read as "m" followed by "s". */
        if (ul > best && strncmp(*pp, units[i].name, ul) == 0) {
            unit = units[i].ns;
            best = ul;
        }
    }
    if (!best)
        return AF_EPARSE;
    *pp += best;
    if (whole > limit_ns / unit)
        return AF_EPARSE;
    *part = whole * unit + (uint64_t)(frac * (double)unit);
    return *part > limit_ns ? AF_EPARSE : 0;
}

int af_config_parse_duration(const char *s, uint32_t *out_ms)
{
    const uint64_t limit_ns = (uint64_t)UINT32_MAX * 1000000ull;
    if (!s || !*s)
        return AF_EPARSE;

    /* A bare integer is milliseconds, like the OTEL_* timeout variables. */
    size_t digits = strspn(s, "0123456789");
    if (digits && s[digits] == '\0') {
        if (digits > 10)
            return AF_EPARSE;
        unsigned long long v = strtoull(s, NULL, 10);
        if (v > UINT32_MAX)
            return AF_EPARSE;
        *out_ms = (uint32_t)v;
        return 0;
    }

    uint64_t total_ns = 0;
    const char *p = s;
    while (*p) {
        uint64_t part;
        if (parse_term(&p, limit_ns, &part) != 0 || total_ns > limit_ns - part)
            return AF_EPARSE;
        total_ns += part;
    }
    uint64_t ms = (total_ns + 999999ull) / 1000000ull;
    if (ms > UINT32_MAX)
        return AF_EPARSE;
    *out_ms = (uint32_t)ms;
    return 0;
}

void af_config_format_duration(uint32_t ms, char *out, size_t out_len)
{
    if (ms == 0)
        snprintf(out, out_len, "0");
    else if (ms % 3600000u == 0)
        snprintf(out, out_len, "%uh", ms / 3600000u);
    else if (ms % 60000u == 0)
        snprintf(out, out_len, "%um", ms / 60000u);
    else if (ms % 1000u == 0)
        snprintf(out, out_len, "%us", ms / 1000u);
    else
        snprintf(out, out_len, "%ums", ms);
}
