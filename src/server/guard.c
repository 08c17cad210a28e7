/*
 * The request gate and descriptor-exhaustion shedding; see guard.h and docs/security.md.
 */
#include "server/guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/str.h"

/* ---------------------------------------------------------------------------------------- */
/* Set-up.                                                                                   */

static bool is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0 || strcmp(addr, "[::]") == 0;
}

int af__guard_init(af__guard *g, const af_server_opts *o, const char *bind_address,
                   const char *token)
{
    memset(g, 0, sizeof(*g));
    atomic_init(&g->reserve_fd, -1);
    atomic_init(&g->paused_until, 0);
    g->token = token;
    g->auth_read = o->auth_read;
    if (o->n_allowed_hosts) {
        g->hosts = calloc(o->n_allowed_hosts, sizeof(*g->hosts));
        if (!g->hosts)
            return -ENOMEM;
        for (size_t i = 0; i < o->n_allowed_hosts; i++) {
            g->hosts[i] = af__strdup(o->allowed_hosts[i] ? o->allowed_hosts[i] : "");
            if (!g->hosts[i])
                return -ENOMEM;
            g->n_hosts = i + 1;
        }
    } else if (!is_wildcard(bind_address)) {
        /* A non-loopback address the daemon is reached at: Host carries it bracketed when it
         * is IPv6. Loopback addresses need no entry (they are always accepted). */
        size_t n = strlen(bind_address);
        bool v6 = strchr(bind_address, ':') != NULL && bind_address[0] != '[';
        g->bound = malloc(n + 3);
        if (!g->bound)
            return -ENOMEM;
        snprintf(g->bound, n + 3, v6 ? "[%s]" : "%s", bind_address);
    }
    /* Descriptor exhaustion: held so one accept can still be answered when none are left. */
    atomic_store(&g->reserve_fd, open("/dev/null", O_RDONLY | O_CLOEXEC));
    return 0;
}

void af__guard_free(af__guard *g)
{
    for (size_t i = 0; i < g->n_hosts; i++)
        free(g->hosts[i]);
    free(g->hosts);
    free(g->bound);
    int fd = atomic_exchange(&g->reserve_fd, -1);
    if (fd >= 0)
        close(fd);
    g->hosts = NULL;
    g->bound = NULL;
    g->n_hosts = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Host and Origin.                                                                          */

/* Splits "name", "name:port", "[v6]" or "[v6]:port" (name keeps its brackets). *port = -1
 * when there is none. False when malformed (a bare IPv6 address, a bad port). */
static bool split_authority(const char *s, size_t n, size_t *name_len, int *port)
{
    size_t nl;
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return false;
        nl = (size_t)(rb - s) + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        nl = colon ? (size_t)(colon - s) : n;
        if (colon && memchr(colon + 1, ':', n - nl - 1))
            return false;
    }
    if (nl == 0)
        return false;
    *name_len = nl;
    *port = -1;
    if (nl == n)
        return true;
    if (s[nl] != ':' || n - nl - 1 == 0 || n - nl - 1 > 5)
        return false;
    char digits[6];
    memcpy(digits, s + nl + 1, n - nl - 1);
    digits[n - nl - 1] = '\0';
    uint64_t v;
    if (af__parse_u64(digits, 65535, &v) != 0)
        return false;
    *port = (int)v;
    return true;
}

/* 127.a.b.c in strict dotted decimal. */
static bool is_loopback_v4(const char *s, size_t n)
{
    char tmp[16];
    if (n < 7 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    struct in_addr a;
    return inet_pton(AF_INET, tmp, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static bool is_loopback_name(const char *s, size_t n)
{
    return af__str_ieq(s, n, "localhost") || af__str_ieq(s, n, "[::1]") || is_loopback_v4(s, n);
}

/* name:port against an allow-list entry; an entry without a port matches any port. */
static bool entry_matches(const char *entry, const char *name, size_t nl, int port)
{
    size_t el;
    int eport;
    if (!split_authority(entry, strlen(entry), &el, &eport))
        return false;
    char e[256];
    if (el != nl)
        return false;
    if (el >= sizeof(e))
        return false;
    memcpy(e, entry, el);
    e[el] = '\0';
    return af__str_ieq(name, nl, e) && (eport < 0 || eport == port);
}

static bool listed(const af__guard *g, const char *name, size_t nl, int port)
{
    for (size_t i = 0; i < g->n_hosts; i++)
        if (entry_matches(g->hosts[i], name, nl, port))
            return true;
    return false;
}

bool af__guard_host_ok(const af__guard *g, const char *host, size_t n, int port)
{
    size_t nl;
    int hport;
    if (!split_authority(host, n, &nl, &hport))
        return false;
    bool own_port = hport < 0 || hport == port;
    if (is_loopback_name(host, nl))
        return own_port;
    if (g->bound && af__str_ieq(host, nl, g->bound))
        return own_port;
    return listed(g, host, nl, hport);
}

bool af__guard_origin_ok(const af__guard *g, const char *origin, size_t on, const char *host,
                         size_t hn)
{
    size_t skip;
    if (on > 7 && af__str_ieq(origin, 7, "http://"))
        skip = 7;
    else if (on > 8 && af__str_ieq(origin, 8, "https://"))
        skip = 8;
    else
        return false; /* "null" (sandboxed frames, file:) and anything odd */
    const char *auth = origin + skip;
    size_t an = on - skip, nl;
    int port;
    if (!split_authority(auth, an, &nl, &port))
        return false;
    /* Same origin: the page was served by this Host. */
    char h[256];
    if (host && hn == an && hn < sizeof(h)) {
        memcpy(h, host, hn);
        h[hn] = '\0';
        if (af__str_ieq(auth, an, h))
            return true;
    }
    return listed(g, auth, nl, port);
}

/* ---------------------------------------------------------------------------------------- */
/* Bodies, tokens, query strings.                                                            */

bool af__guard_json_type(const char *ct, size_t n)
{
    const char *semi = memchr(ct, ';', n);
    size_t m = semi ? (size_t)(semi - ct) : n;
    while (m && (ct[m - 1] == ' ' || ct[m - 1] == '\t'))
        m--;
    return af__str_ieq(ct, m, "application/json");
}

bool af__guard_token_eq(const char *token, const char *got, size_t got_len)
{
    if (!token)
        return false;
    size_t want = strlen(token);
    /* Constant time in the token's content: always walk the configured token's length. */
    unsigned char diff = (unsigned char)(got_len != want);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)(token[i] ^ (i < got_len ? got[i] : 0));
    return diff == 0;
}

bool af__guard_bearer_ok(const char *token, const char *authorization, size_t n)
{
    if (!token)
        return true;
    if (!authorization || n < 7 || !af__str_ieq(authorization, 7, "Bearer "))
        return false;
    return af__guard_token_eq(token, authorization + 7, n - 7);
}

/* Calls fn for each name=value pair of q[0..n); stops when it returns false. */
typedef bool (*pair_fn)(void *u, const char *name, size_t nl, const char *value, size_t vl,
                        bool has_value);

static bool each_pair(const char *q, size_t n, pair_fn fn, void *u)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        size_t nl = eq ? (size_t)(eq - (q + i)) : j - i;
        const char *v = eq ? eq + 1 : q + j;
        if (!fn(u, q + i, nl, v, (size_t)(q + j - v), eq != NULL))
            return false;
        i = j + 1;
    }
    return true;
}

typedef struct query_check {
    char *scratch;
    size_t cap;
    char *bad;
    size_t bad_cap;
} query_check;

static bool check_pair(void *u, const char *name, size_t nl, const char *value, size_t vl,
                       bool has_value)
{
    (void)has_value;
    query_check *qc = u;
    if (af__pct_decode(name, nl, true, qc->scratch, qc->cap, NULL) == 0 &&
        af__pct_decode(value, vl, true, qc->scratch, qc->cap, NULL) == 0)
        return true;
    /* Named as sent (at most 40 bytes, printable only): it goes into the error message. */
    size_t k = 0;
    for (size_t i = 0; i < nl && k + 1 < qc->bad_cap && k < 40; i++)
        qc->bad[k++] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    qc->bad[k] = '\0';
    return false;
}

bool af__guard_query_ok(const char *q, size_t n, char *bad, size_t cap)
{
    if (cap)
        bad[0] = '\0';
    /* Decoded text is never longer than its source; most queries fit on the stack. */
    char stack[512];
    query_check qc = {.scratch = n < sizeof(stack) ? stack : malloc(n + 1),
                      .cap = n < sizeof(stack) ? sizeof(stack) : n + 1,
                      .bad = bad,
                      .bad_cap = cap};
    if (!qc.scratch)
        return true; /* the handlers' own decoding still refuses what is malformed */
    bool ok = each_pair(q, n, check_pair, &qc);
    if (qc.scratch != stack)
        free(qc.scratch);
    return ok;
}

typedef struct redact {
    char *out;
    size_t cap, len;
    bool first, cut;
} redact;

static void put(redact *r, const char *s, size_t n)
{
    memcpy(r->out + r->len, s, n);
    r->len += n;
}

static bool redact_pair(void *u, const char *name, size_t nl, const char *value, size_t vl,
                        bool has_value)
{
    (void)value;
    (void)vl;
    static const char red[] = "=REDACTED";
    redact *r = u;
    size_t need = (r->first ? 0 : 1) + nl + (has_value ? sizeof(red) - 1 : 0);
    /* Room for "&..." and the NUL after this pair. */
    if (r->len + need + 5 > r->cap) {
        r->cut = true;
        return false;
    }
    if (!r->first)
        put(r, "&", 1);
    put(r, name, nl);
    if (has_value)
        put(r, red, sizeof(red) - 1);
    r->first = false;
    return true;
}

size_t af__guard_redact_target(const char *target, size_t n, char *out, size_t cap)
{
    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    const char *q = memchr(target, '?', n);
    size_t pl = q ? (size_t)(q - target) : n;
    redact r = {.out = out, .cap = cap, .len = 0, .first = true, .cut = false};
    /* Every step keeps room for "?", "&..." and the NUL. */
    if (pl + 6 > cap) {
        put(&r, target, cap - 6);
        put(&r, "...", 3);
    } else {
        put(&r, target, pl);
        if (q) {
            put(&r, "?", 1);
            each_pair(q + 1, n - pl - 1, redact_pair, &r);
            if (r.cut)
                put(&r, r.first ? "..." : "&...", r.first ? 3 : 4);
        }
    }
    out[r.len] = '\0';
    return r.len;
}

/* ---------------------------------------------------------------------------------------- */
/* The gate.                                                                                 */

static int deny(af__guard_deny *d, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int deny(af__guard_deny *d, int status, const char *code, const char *fmt, ...)
{
    d->status = status;
    d->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
    return status;
}

/* The token of a /ws upgrade: Authorization, or access_token in the query (browsers cannot
 * set headers on a WebSocket; this is the only place a query token is accepted). */
static bool ws_token_ok(const af__guard *g, const af__http_request *req)
{
    size_t n;
    const char *a = af__http_header_get(req, "authorization", &n);
    if (a && af__guard_bearer_ok(g->token, a, n))
        return true;
    char tok[512];
    return req->query &&
           af__http_query_arg(req->query, req->query_len, "access_token", tok, sizeof(tok)) &&
           af__guard_token_eq(g->token, tok, strlen(tok));
}

int af__guard_check(const af__guard *g, const af__http_request *req, int port, bool metrics,
                    bool ws, af__guard_deny *d)
{
    size_t hn = 0;
    const char *host = af__http_header_get(req, "host", &hn);
    /* HTTP/1.0 may omit Host (the parser requires it in 1.1); browsers always send it, so a
     * request without one is no rebinding attempt. */
    if (host && !af__guard_host_ok(g, host, hn, port))
        return deny(d, 421, "misdirected_request",
                    "Host \"%.*s\" is not served here: use localhost or 127.0.0.1 with port %d, "
                    "or add it to server.allowed_hosts",
                    (int)(hn > 64 ? 64 : hn), host, port);
    if (metrics)
        return 0;
    bool safe = (req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
                (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0) ||
                (req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0);
    if (!safe || ws) {
        size_t on, sn;
        const char *origin = af__http_header_get(req, "origin", &on);
        if (origin && !af__guard_origin_ok(g, origin, on, host, hn))
            return deny(d, 403, "cross_origin",
                        "requests from origin \"%.*s\" are not accepted: only this server's own "
                        "pages (or server.allowed_hosts) may write or open /ws",
                        (int)(on > 64 ? 64 : on), origin);
        const char *sfs = af__http_header_get(req, "sec-fetch-site", &sn);
        if (sfs && af__str_ieq(sfs, sn, "cross-site"))
            return deny(d, 403, "cross_origin",
                        "cross-site requests (Sec-Fetch-Site: cross-site) are not accepted");
    }
    if (!safe) {
        size_t cn;
        const char *ct = af__http_header_get(req, "content-type", &cn);
        bool body = req->chunked || (req->has_content_length && req->content_length > 0);
        if (ct ? !af__guard_json_type(ct, cn) : body)
            return deny(d, 415, "unsupported_media_type",
                        "%s bodies must be sent with Content-Type: application/json (got %s%.*s)",
                        req->method_len == 4 && memcmp(req->method, "POST", 4) == 0 ? "POST"
                                                                                    : "request",
                        ct ? "" : "none", ct ? (int)(cn > 64 ? 64 : cn) : 0, ct ? ct : "");
    }
    char bad[48];
    if (req->query && !af__guard_query_ok(req->query, req->query_len, bad, sizeof(bad)))
        return deny(d, 400, "invalid_argument",
                    "query parameter \"%s\": malformed percent-encoding or %%00 in its name or "
                    "value",
                    bad);
    if (ws && g->auth_read && g->token && !ws_token_ok(g, req))
        return deny(d, 401, "unauthorized",
                    "/ws needs Authorization: Bearer <token> or ?access_token=<token>");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Descriptor exhaustion.                                                                    */

void af__guard_rearm(af__guard *g)
{
    if (atomic_load(&g->reserve_fd) >= 0)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int none = -1;
    if (fd >= 0 && !atomic_compare_exchange_strong(&g->reserve_fd, &none, fd))
        close(fd); /* another loop re-armed it first */
}

bool af__guard_shed(af__guard *g, int listen_fd)
{
    static const char body[] = "{\"error\":{\"code\":\"overloaded\",\"status\":503,\"message\":"
                               "\"the server is out of file descriptors; retry later\"}}";
    char answer[320];
    int len = snprintf(answer, sizeof(answer),
                       "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                       "content-length: %zu\r\nretry-after: 1\r\nconnection: close\r\n\r\n%s",
                       sizeof(body) - 1, body);
    int reserve = atomic_exchange(&g->reserve_fd, -1);
    if (reserve < 0)
        return false; /* another loop holds it right now, or it could not be opened */
    close(reserve);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        /* Best effort: a socket buffer takes this much at once, and nothing waits for it. */
        ssize_t w = send(fd, answer, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
    }
    atomic_store(&g->reserve_fd, open("/dev/null", O_RDONLY | O_CLOEXEC));
    return fd >= 0;
}
