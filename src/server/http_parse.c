/*
 * HTTP/1.1 request framing (RFC 9112): the request head, the chunked transfer coding and
 * query-string arguments. See http_parse.h for the rules and ownership.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/http_parse.h"
#include "util/str.h"

/* RFC 9110 §5.6.2 tchar. */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int fail(af__http_error *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(af__http_error *err, int status, const char *fmt, ...)
{
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return AF__HTTP_ERROR;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Calls fn for each comma-separated, trimmed, non-empty element of a field value. */
typedef void (*list_fn)(const char *item, size_t len, void *arg);
static void each_item(const char *v, size_t n, list_fn fn, void *arg)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (b > a)
            fn(v + a, b - a, arg);
        i = j + 1;
    }
}

typedef struct conn_tokens {
    bool close, keep_alive, upgrade;
} conn_tokens;

static void conn_item(const char *it, size_t n, void *arg)
{
    conn_tokens *t = arg;
    if (af__str_ieq(it, n, "close"))
        t->close = true;
    else if (af__str_ieq(it, n, "keep-alive"))
        t->keep_alive = true;
    else if (af__str_ieq(it, n, "upgrade"))
        t->upgrade = true;
}

static void upgrade_item(const char *it, size_t n, void *arg)
{
    if (af__str_ieq(it, n, "websocket"))
        *(bool *)arg = true;
}

typedef struct cl_state {
    bool seen, bad, differ;
    uint64_t value;
} cl_state;

static void cl_item(const char *it, size_t n, void *arg)
{
    cl_state *c = arg;
    uint64_t v = 0;
    if (n > 19)
        c->bad = true;
    for (size_t i = 0; i < n && !c->bad; i++) {
        if (it[i] < '0' || it[i] > '9') {
            c->bad = true;
            break;
        }
        v = v * 10 + (uint64_t)(it[i] - '0');
    }
    if (v > (1ull << 62))
        c->bad = true;
    if (c->seen && v != c->value)
        c->differ = true;
    c->seen = true;
    c->value = v;
}

/* Finds the end of the line starting at p (before end): *next gets the start of the next
 * line, the return value the line's length without CR LF. NULL-equivalent: returns SIZE_MAX
 * when no LF is in range. */
static size_t line_end(const char *p, const char *end, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return (size_t)-1;
    *next = lf + 1;
    size_t n = (size_t)(lf - p);
    if (n && p[n - 1] == '\r')
        n--;
    return n;
}

static int parse_target(const char *t, size_t n, const char *method, size_t mlen,
                        af__http_request *req, size_t at, af__http_error *err)
{
    req->target = t;
    req->target_len = n;
    req->query = NULL;
    req->query_len = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] == 0x7f)
            return fail(err, 400, "request line: a control character in the target at byte %zu",
                        at + i);
    const char *p = t;
    size_t len = n;
    if (n == 1 && t[0] == '*') {
        if (!(mlen == 7 && memcmp(method, "OPTIONS", 7) == 0))
            return fail(err, 400, "request line: the target \"*\" is only allowed with OPTIONS");
        req->path = t;
        req->path_len = 1;
        return AF__HTTP_OK;
    }
    if (n >= 7 && (af__str_ieq(t, 7, "http://") || (n >= 8 && af__str_ieq(t, 8, "https://")))) {
        /* absolute-form: the path starts at the first '/' after the authority */
        size_t skip = t[4] == ':' ? 7 : 8;
        size_t i = skip;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        if (i == skip)
            return fail(err, 400, "request line: absolute target without a host at byte %zu", at);
        p = t + i;
        len = n - i;
        if (len == 0 || p[0] == '?') {
            /* "http://host" or "http://host?q": the path is "/" */
            req->path = "/";
            req->path_len = 1;
            if (len && p[0] == '?') {
                req->query = p + 1;
                req->query_len = len - 1;
            }
            return AF__HTTP_OK;
        }
    } else if (n == 0 || t[0] != '/') {
        return fail(err, 400, "request line: expected a target starting with '/' at byte %zu", at);
    }
    const char *q = memchr(p, '?', len);
    req->path = p;
    if (q) {
        req->path_len = (size_t)(q - p);
        req->query = q + 1;
        req->query_len = len - req->path_len - 1;
    } else {
        req->path_len = len;
    }
    return AF__HTTP_OK;
}

int af__http_parse_request(const char *buf, size_t len, size_t max_head, af__http_request *req,
                           af__http_error *err)
{
    const char *end = buf + len;
    const char *p = buf;
    /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
    while (p < end && (*p == '\r' || *p == '\n')) {
        if (*p == '\r' && (p + 1 >= end || p[1] != '\n'))
            break;
        p += *p == '\r' ? 2 : 1;
    }
    /* The whole head must be here before anything is judged, except its size. */
    const char *scan = p;
    const char *head_end = NULL;
    while (scan < end) {
        const char *next;
        size_t n = line_end(scan, end, &next);
        if (n == (size_t)-1)
            break;
        if (n == 0 && scan != p) {
            head_end = next;
            break;
        }
        scan = next;
    }
    if (!head_end) {
        if (len > max_head)
            return fail(err, 431, "the request head exceeds %zu bytes", max_head);
        return AF__HTTP_INCOMPLETE;
    }
    if ((size_t)(head_end - buf) > max_head)
        return fail(err, 431, "the request head is %zu bytes; the limit is %zu",
                    (size_t)(head_end - buf), max_head);

    /* Everything but the header array (filled up to n_headers only). */
    memset(req, 0, offsetof(af__http_request, headers));
    memset(&req->n_headers, 0, sizeof(*req) - offsetof(af__http_request, n_headers));
    req->head_len = (size_t)(head_end - buf);

    /* Request line: method SP target SP HTTP/1.x */
    const char *next = head_end;
    size_t ll = line_end(p, end, &next);
    const char *line = p;
    size_t at = (size_t)(p - buf);
    size_t i = 0;
    while (i < ll && tchar[(unsigned char)line[i]])
        i++;
    if (i == 0 || i >= ll || line[i] != ' ')
        return fail(err, 400, "request line: expected a method token and a space at byte %zu",
                    at + i);
    req->method = line;
    req->method_len = i;
    size_t t0 = i + 1;
    const char *sp = memchr(line + t0, ' ', ll - t0);
    if (!sp)
        return fail(err, 400,
                    "request line: expected \"<method> <target> HTTP/1.1\" (no version after "
                    "the target at byte %zu)",
                    at + t0);
    size_t tlen = (size_t)(sp - (line + t0));
    int rc = parse_target(line + t0, tlen, req->method, req->method_len, req, at + t0, err);
    if (rc != AF__HTTP_OK)
        return rc;
    const char *ver = sp + 1;
    size_t vlen = ll - (size_t)(ver - line);
    size_t vat = at + (size_t)(ver - line);
    if (vlen == 8 && memcmp(ver, "HTTP/1.", 7) == 0 && (ver[7] == '0' || ver[7] == '1')) {
        req->minor_version = ver[7] - '0';
    } else if (vlen == 8 && memcmp(ver, "HTTP/", 5) == 0 && ver[5] >= '0' && ver[5] <= '9' &&
               ver[6] == '.' && ver[7] >= '0' && ver[7] <= '9') {
        return fail(err, 505, "request line: HTTP/%c.%c is not supported (use HTTP/1.1)", ver[5],
                    ver[7]);
    } else {
        return fail(err, 400, "request line: expected HTTP/1.1 or HTTP/1.0 at byte %zu", vat);
    }

    /* Header fields. */
    conn_tokens ct = {0};
    cl_state cl = {0};
    bool te = false, te_other = false, upgrade_ws = false;
    unsigned lineno = 1;
    for (p = next; p < head_end;) {
        ll = line_end(p, end, &next);
        lineno++;
        at = (size_t)(p - buf);
        if (ll == 0)
            break;
        if (is_ows(p[0]))
            return fail(err, 400, "header line %u (byte %zu): obsolete line folding is not allowed",
                        lineno, at);
        size_t k = 0;
        while (k < ll && tchar[(unsigned char)p[k]])
            k++;
        if (k == ll || (p[k] != ':' && !is_ows(p[k])) || k == 0)
            return fail(err, 400, "header line %u (byte %zu): expected \"Name: value\"", lineno,
                        at);
        if (p[k] != ':')
            return fail(err, 400, "header line %u (byte %zu): whitespace before ':' is not allowed",
                        lineno, at + k);
        const char *v = p + k + 1;
        const char *ve = p + ll;
        while (v < ve && is_ows(*v))
            v++;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        for (const char *c = v; c < ve; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return fail(err, 400, "header line %u (byte %zu): a control character in the value",
                            lineno, at + (size_t)(c - p));
        if (req->n_headers == AF__HTTP_MAX_HEADERS)
            return fail(err, 431, "more than %d header fields", AF__HTTP_MAX_HEADERS);
        af__http_header *h = &req->headers[req->n_headers++];
        h->name = p;
        h->name_len = k;
        h->value = v;
        h->value_len = (size_t)(ve - v);

        switch (k) {
        case 6:
            if (af__str_ieq(p, k, "expect") && af__str_ieq(v, h->value_len, "100-continue"))
                req->expect_continue = true;
            break;
        case 7:
            if (af__str_ieq(p, k, "upgrade"))
                each_item(v, h->value_len, upgrade_item, &upgrade_ws);
            break;
        case 10:
            if (af__str_ieq(p, k, "connection"))
                each_item(v, h->value_len, conn_item, &ct);
            break;
        case 14:
            if (af__str_ieq(p, k, "content-length")) {
                each_item(v, h->value_len, cl_item, &cl);
                if (!cl.seen || cl.bad)
                    return fail(err, 400,
                                "header line %u: Content-Length \"%.*s\" is not a decimal number",
                                lineno, (int)(h->value_len > 40 ? 40 : h->value_len), v);
                if (cl.differ)
                    return fail(err, 400, "header line %u: Content-Length values disagree", lineno);
            }
            break;
        case 17:
            if (af__str_ieq(p, k, "transfer-encoding")) {
                if (af__str_ieq(v, h->value_len, "chunked") && !te)
                    te = true;
                else
                    te_other = true;
            }
            break;
        default:
            break;
        }
        p = next;
    }
    if (te_other)
        return fail(err, 501,
                    "unsupported transfer coding: only \"Transfer-Encoding: chunked\" is accepted");
    if (te && cl.seen)
        return fail(err, 400, "both Content-Length and Transfer-Encoding: send only one");
    if (te && req->minor_version == 0)
        return fail(err, 400, "Transfer-Encoding is not allowed in HTTP/1.0");
    req->chunked = te;
    req->has_content_length = cl.seen;
    req->content_length = cl.value;
    req->keep_alive = req->minor_version == 1 ? !ct.close : (ct.keep_alive && !ct.close);
    req->upgrade_websocket = ct.upgrade && upgrade_ws;
    return AF__HTTP_OK;
}

const char *af__http_header_get(const af__http_request *req, const char *name, size_t *len)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (af__str_ieq(req->headers[i].name, req->headers[i].name_len, name)) {
            if (len)
                *len = req->headers[i].value_len;
            return req->headers[i].value;
        }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunked transfer coding.                                                                  */

enum {
    CH_SIZE,    /* hex digits */
    CH_EXT,     /* after the size: extension up to LF */
    CH_DATA,    /* chunk data */
    CH_DATA_CR, /* CR (or LF) after the data */
    CH_DATA_LF, /* LF after CR */
    CH_TRAILER, /* a trailer line (or the empty line ending the body) */
    CH_DONE,
};

#define CH_LINE_MAX 8192

void af__http_chunked_init(af__http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

long af__http_chunked_feed(af__http_chunked *c, const char *in, size_t len, af_buf *out,
                           size_t limit, bool *done, af__http_error *err)
{
    size_t i = 0;
    *done = c->state == CH_DONE;
    while (i < len && c->state != CH_DONE) {
        char ch = in[i];
        size_t at = c->consumed + i;
        switch (c->state) {
        case CH_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (c->remaining >> 59)
                    return fail(err, 400, "chunked body: the chunk size at byte %zu is too large",
                                at);
                c->remaining = c->remaining * 16 + (uint64_t)h;
                c->line_len++;
                i++;
            } else if (c->line_len == 0) {
                return fail(err, 400, "chunked body: expected a hexadecimal chunk size at byte %zu",
                            at);
            } else if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
                c->state = CH_EXT;
            } else {
                return fail(err, 400,
                            "chunked body: unexpected '%c' after the chunk size at byte %zu", ch,
                            at);
            }
            break;
        }
        case CH_EXT:
            i++;
            if (ch == '\n') {
                c->line_len = 0;
                if (c->remaining == 0) {
                    c->state = CH_TRAILER;
                } else {
                    if (out->len + c->remaining > limit)
                        return fail(err, 413, "request body exceeds %zu bytes", limit);
                    c->state = CH_DATA;
                }
            } else if (++c->line_len > CH_LINE_MAX) {
                return fail(err, 400, "chunked body: a chunk header longer than %d bytes",
                            CH_LINE_MAX);
            }
            break;
        case CH_DATA: {
            size_t take = len - i;
            if (take > c->remaining)
                take = (size_t)c->remaining;
            af__buf_append(out, in + i, take);
            i += take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            i++;
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                c->state = CH_SIZE;
            else
                return fail(err, 400,
                            "chunked body: expected CRLF after the chunk data at byte %zu", at);
            break;
        case CH_DATA_LF:
            i++;
            if (ch != '\n')
                return fail(err, 400, "chunked body: expected LF after CR at byte %zu", at);
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            i++;
            if (ch == '\n') {
                if (c->line_len == 0)
                    c->state = CH_DONE;
                c->line_len = 0;
            } else if (ch != '\r' || c->line_len > 0) {
                if (++c->line_len > CH_LINE_MAX)
                    return fail(err, 400, "chunked body: a trailer line longer than %d bytes",
                                CH_LINE_MAX);
            }
            break;
        default:
            break;
        }
    }
    c->consumed += i;
    *done = c->state == CH_DONE;
    return (long)i;
}

/* ---------------------------------------------------------------------------------------- */
/* Query strings.                                                                            */

bool af__http_query_arg(const char *query, size_t query_len, const char *key, char *out, size_t cap)
{
    if (!query || cap == 0)
        return false;
    size_t klen = strlen(key);
    size_t i = 0;
    while (i <= query_len) {
        size_t j = i;
        while (j < query_len && query[j] != '&')
            j++;
        const char *pair = query + i;
        size_t plen = j - i;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;
        if (nlen == klen && memcmp(pair, key, klen) == 0) {
            const char *v = eq ? eq + 1 : pair + plen;
            size_t vlen = (size_t)(pair + plen - v), o = 0;
            for (size_t k = 0; k < vlen; k++) {
                char ch = v[k];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    if (k + 2 >= vlen)
                        return false;
                    int hi = hexval(v[k + 1]), lo = hexval(v[k + 2]);
                    if (hi < 0 || lo < 0)
                        return false;
                    ch = (char)(hi * 16 + lo);
                    k += 2;
                }
                if (o + 1 >= cap)
                    return false;
                out[o++] = ch;
            }
            out[o] = '\0';
            return true;
        }
        i = j + 1;
    }
    return false;
}
