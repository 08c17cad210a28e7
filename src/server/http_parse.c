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

/* A field-value byte (RFC 9110 §5.5): VCHAR, obs-text, SP or HTAB. CR and LF are not, so the
 * scan that validates a value also finds its line end. */
static inline bool is_vbyte(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x20 ? u != 0x7f : u == '\t';
}

/* Skips the 8-byte words of p[0..end) whose bytes are all >= lo (lo <= 0x80) and not DEL,
 * then returns; the caller's byte loop takes it from there. Values and targets are most of a
 * head's bytes (traceparent, user agents), and this tests eight at a time (the classic
 * "has a byte less than n" / "has a zero byte" word tricks, exact as to whether any byte
 * matches). */
static const char *skip_words(const char *p, const char *end, uint64_t lo)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x, del;
        memcpy(&x, p, 8);
        del = x ^ (ones * 0x7f);
        if (((x - ones * lo) & ~x & highs) | ((del - ones) & ~del & highs))
            break;
        p += 8;
    }
    return p;
}

/* The next comma-separated element of v[*pos..n), without surrounding whitespace; empty
 * elements are skipped (RFC 9110 §5.6.1). False when none is left. */
static bool next_item(const char *v, size_t n, size_t *pos, const char **item, size_t *len)
{
    size_t i = *pos;
    while (i < n && (is_ows(v[i]) || v[i] == ','))
        i++;
    if (i == n) {
        *pos = n;
        return false;
    }
    size_t a = i;
    while (i < n && v[i] != ',')
        i++;
    size_t b = i;
    while (is_ows(v[b - 1]))
        b--;
    *pos = i;
    *item = v + a;
    *len = b - a;
    return true;
}

/* Content-Length: one decimal number, possibly repeated (as a list or as several fields); all
 * values must agree (RFC 9112 §6.3). */
typedef struct cl_state {
    bool seen, bad, differ;
    uint64_t value;
} cl_state;

static void cl_add(cl_state *c, const char *v, size_t n)
{
    size_t pos = 0, len;
    const char *it;
    bool any = false;
    while (next_item(v, n, &pos, &it, &len)) {
        any = true;
        uint64_t x = 0;
        /* 19 digits cannot overflow 64 bits; the value is then capped at 2^62. */
        if (len > 19) {
            c->bad = true;
            return;
        }
        for (size_t i = 0; i < len; i++) {
            if (it[i] < '0' || it[i] > '9') {
                c->bad = true;
                return;
            }
            x = x * 10 + (uint64_t)(it[i] - '0');
        }
        if (x > (1ull << 62)) {
            c->bad = true;
            return;
        }
        if (c->seen && x != c->value)
            c->differ = true;
        c->seen = true;
        c->value = x;
    }
    if (!any)
        c->bad = true;
}

/* Splits the request-target into path and query (RFC 9112 §3.2). Control characters and
 * spaces were already excluded by the request-line scan. */
static int parse_target(const char *t, size_t n, af__http_request *req, size_t at,
                        af__http_error *err)
{
    req->target = t;
    req->target_len = n;
    const char *p = t;
    size_t len = n;
    if (n == 1 && t[0] == '*') {
        if (!(req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0))
            return fail(err, 400,
                        "request line: the target \"*\" at byte %zu is only allowed with OPTIONS",
                        at);
        req->path = t;
        req->path_len = 1;
        return AF__HTTP_OK;
    }
    if (n >= 7 && (t[0] | 0x20) == 'h' &&
        (af__str_ieq(t, 7, "http://") || (n >= 8 && af__str_ieq(t, 8, "https://")))) {
        /* absolute-form: the path starts at the first '/' after the authority */
        size_t skip = t[4] == ':' ? 7 : 8;
        size_t i = skip;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        if (i == skip)
            return fail(err, 400, "request line: expected a host after \"%.*s\" at byte %zu",
                        (int)skip, t, at + skip);
        p = t + i;
        len = n - i;
        if (len == 0 || p[0] == '?') {
            /* "http://host" or "http://host?q": the path is "/" */
            req->path = "/";
            req->path_len = 1;
            if (len) {
                req->query = p + 1;
                req->query_len = len - 1;
            }
            return AF__HTTP_OK;
        }
    } else if (n == 0 || t[0] != '/') {
        return fail(err, 400,
                    "request line: expected a target starting with '/' (or http://, or *) at "
                    "byte %zu",
                    at);
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

/* Parsing the head: every line is judged as soon as its end is in the buffer, so a malformed
 * request is refused without waiting for the rest, and running out of bytes anywhere (before
 * the empty line) means "incomplete". Nothing in a prefix of a valid head is an error, which is
 * what lets the caller simply call again with more bytes. Each step below returns
 * AF__HTTP_OK (and advances *pp), AF__HTTP_INCOMPLETE or AF__HTTP_ERROR (err filled). */

/* Leading empty lines, then "method SP request-target SP HTTP-version CRLF". */
static int parse_request_line(const char *buf, const char *end, const char **pp,
                              af__http_request *req, af__http_error *err)
{
    const char *p = *pp;
    /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
    while (p < end && (*p == '\r' || *p == '\n')) {
        if (*p == '\n') {
            p++;
            continue;
        }
        if (p + 1 == end)
            return AF__HTTP_INCOMPLETE;
        if (p[1] != '\n')
            break; /* refused below as a bad method */
        p += 2;
    }

    const char *line = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    if (p == end)
        return AF__HTTP_INCOMPLETE;
    if (p == line || *p != ' ')
        return fail(err, 400, "request line: expected a method token and a space at byte %zu",
                    (size_t)(p - buf));
    req->method = line;
    req->method_len = (size_t)(p - line);
    const char *t = ++p;
    p = skip_words(p, end, 0x21);
    while (p < end && (unsigned char)*p > 0x20 && *p != 0x7f)
        p++;
    if (p == end)
        return AF__HTTP_INCOMPLETE;
    if (*p != ' ') {
        if (*p == '\r' || *p == '\n')
            return fail(err, 400,
                        "request line: expected \"<method> <target> HTTP/1.1\" (no version "
                        "after the target at byte %zu)",
                        (size_t)(p - buf));
        return fail(err, 400, "request line: a control character in the target at byte %zu",
                    (size_t)(p - buf));
    }
    const char *ver = ++p;
    while (p < end && *p != '\r' && *p != '\n')
        p++;
    if (p == end || (*p == '\r' && p + 1 == end))
        return AF__HTTP_INCOMPLETE;
    if (*p == '\r' && p[1] != '\n')
        return fail(err, 400, "request line: expected LF after CR at byte %zu",
                    (size_t)(p + 1 - buf));
    size_t vlen = (size_t)(p - ver);
    p += *p == '\r' ? 2 : 1;
    int rc = parse_target(t, (size_t)(ver - 1 - t), req, (size_t)(t - buf), err);
    if (rc != AF__HTTP_OK)
        return rc;
    if (vlen == 8 && memcmp(ver, "HTTP/1.", 7) == 0 && (ver[7] == '0' || ver[7] == '1')) {
        req->minor_version = ver[7] - '0';
    } else if (vlen == 8 && memcmp(ver, "HTTP/", 5) == 0 && ver[5] >= '0' && ver[5] <= '9' &&
               ver[6] == '.' && ver[7] >= '0' && ver[7] <= '9') {
        return fail(err, 505,
                    "request line: HTTP/%c.%c at byte %zu is not supported (use HTTP/1.1)", ver[5],
                    ver[7], (size_t)(ver - buf));
    } else {
        return fail(err, 400, "request line: expected HTTP/1.1 or HTTP/1.0 at byte %zu",
                    (size_t)(ver - buf));
    }
    *pp = p;
    return AF__HTTP_OK;
}

/* What the framing fields said, gathered over the whole head and judged at its end. */
typedef struct framing {
    cl_state cl;
    bool conn_close, conn_keep, conn_upgrade, upgrade_ws;
    bool chunked;
    unsigned n_host;
    const char *te_other; /* the first transfer coding other than chunked */
    size_t te_other_len;
} framing;

/* Notes one field if it frames the message or steers the connection; the length and the
 * first letter are a cheap filter before the case-insensitive compare. */
static int note_framing_field(framing *f, af__http_request *req, const char *buf,
                              const af__http_header *h, unsigned lineno, af__http_error *err)
{
    const char *name = h->name, *v = h->value;
    size_t k = h->name_len, vn = h->value_len;
    size_t pos = 0, il;
    const char *it;
    switch (k) {
    case 4:
        if ((name[0] | 0x20) == 'h' && af__str_ieq(name, k, "host"))
            f->n_host++;
        break;
    case 6:
        if ((name[0] | 0x20) == 'e' && af__str_ieq(name, k, "expect") &&
            af__str_ieq(v, vn, "100-continue"))
            req->expect_continue = true;
        break;
    case 7:
        if ((name[0] | 0x20) == 'u' && af__str_ieq(name, k, "upgrade"))
            while (next_item(v, vn, &pos, &it, &il))
                if (af__str_ieq(it, il, "websocket"))
                    f->upgrade_ws = true;
        break;
    case 10:
        if ((name[0] | 0x20) == 'c' && af__str_ieq(name, k, "connection"))
            while (next_item(v, vn, &pos, &it, &il)) {
                if (il == 5 && af__str_ieq(it, il, "close"))
                    f->conn_close = true;
                else if (il == 10 && af__str_ieq(it, il, "keep-alive"))
                    f->conn_keep = true;
                else if (il == 7 && af__str_ieq(it, il, "upgrade"))
                    f->conn_upgrade = true;
            }
        break;
    case 14:
        if ((name[0] | 0x20) == 'c' && af__str_ieq(name, k, "content-length")) {
            cl_add(&f->cl, v, vn);
            if (f->cl.bad)
                return fail(err, 400,
                            "header line %u (byte %zu): Content-Length \"%.*s\" is not a "
                            "decimal number (at most 2^62)",
                            lineno, (size_t)(v - buf), (int)(vn > 40 ? 40 : vn), v);
            if (f->cl.differ)
                return fail(err, 400, "header line %u (byte %zu): Content-Length values disagree",
                            lineno, (size_t)(v - buf));
        }
        break;
    case 17:
        if ((name[0] | 0x20) == 't' && af__str_ieq(name, k, "transfer-encoding")) {
            bool any = false;
            while (next_item(v, vn, &pos, &it, &il)) {
                any = true;
                if (il == 7 && af__str_ieq(it, il, "chunked")) {
                    if (f->chunked)
                        return fail(err, 400,
                                    "header line %u (byte %zu): the chunked transfer coding "
                                    "is applied more than once",
                                    lineno, (size_t)(it - buf));
                    f->chunked = true;
                } else if (!f->te_other) {
                    f->te_other = it;
                    f->te_other_len = il;
                }
            }
            if (!any)
                return fail(err, 400,
                            "header line %u (byte %zu): expected a transfer coding in "
                            "Transfer-Encoding",
                            lineno, (size_t)(v - buf));
        }
        break;
    default:
        break;
    }
    return AF__HTTP_OK;
}

/* Header fields up to and including the empty line, into req->headers and *f. */
static int parse_fields(const char *buf, const char *end, const char **pp, af__http_request *req,
                        framing *f, af__http_error *err)
{
    const char *p = *pp;
    for (unsigned lineno = 2;; lineno++) {
        const char *line = p;
        if (p == end)
            return AF__HTTP_INCOMPLETE;
        if (*p == '\r' || *p == '\n') {
            if (*p == '\r' && p + 1 == end)
                return AF__HTTP_INCOMPLETE;
            if (*p == '\r' && p[1] != '\n')
                return fail(err, 400, "header line %u (byte %zu): expected LF after CR", lineno,
                            (size_t)(p + 1 - buf));
            *pp = p + (*p == '\r' ? 2 : 1);
            return AF__HTTP_OK;
        }
        if (is_ows(*p))
            return fail(err, 400, "header line %u (byte %zu): obsolete line folding is not allowed",
                        lineno, (size_t)(p - buf));
        while (p < end && tchar[(unsigned char)*p])
            p++;
        if (p == end)
            return AF__HTTP_INCOMPLETE;
        size_t k = (size_t)(p - line);
        if (k == 0 || *p != ':') {
            if (k && is_ows(*p))
                return fail(err, 400,
                            "header line %u (byte %zu): whitespace before ':' is not allowed",
                            lineno, (size_t)(p - buf));
            return fail(err, 400,
                        "header line %u (byte %zu): expected \"Name: value\" (a field name "
                        "token, then ':')",
                        lineno, (size_t)(p - buf));
        }
        p++;
        while (p < end && is_ows(*p))
            p++;
        const char *v = p;
        p = skip_words(p, end, 0x20);
        while (p < end && is_vbyte(*p))
            p++;
        if (p == end || (*p == '\r' && p + 1 == end))
            return AF__HTTP_INCOMPLETE;
        if (*p != '\n' && !(*p == '\r' && p[1] == '\n'))
            return fail(err, 400,
                        "header line %u (byte %zu): a control character in the value (expected "
                        "visible characters, SP or HTAB)",
                        lineno, (size_t)(p - buf));
        const char *ve = p;
        p += *p == '\r' ? 2 : 1;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        if (req->n_headers == AF__HTTP_MAX_HEADERS)
            return fail(err, 431, "header line %u (byte %zu): more than %d header fields", lineno,
                        (size_t)(line - buf), AF__HTTP_MAX_HEADERS);
        af__http_header *h = &req->headers[req->n_headers++];
        h->name = line;
        h->name_len = k;
        h->value = v;
        h->value_len = (size_t)(ve - v);
        int rc = note_framing_field(f, req, buf, h, lineno, err);
        if (rc != AF__HTTP_OK)
            return rc;
    }
}

/* The framing rules that need the whole head (RFC 9112 §6.1, §6.3, §3.2), then the result. */
static int judge_framing(const framing *f, const char *buf, af__http_request *req,
                         af__http_error *err)
{
    if (f->te_other)
        return fail(err, 501,
                    "unsupported transfer coding \"%.*s\" at byte %zu: only "
                    "\"Transfer-Encoding: chunked\" is accepted",
                    (int)(f->te_other_len > 40 ? 40 : f->te_other_len), f->te_other,
                    (size_t)(f->te_other - buf));
    if (f->chunked && f->cl.seen)
        return fail(err, 400,
                    "both Content-Length and Transfer-Encoding in the request head: send only one");
    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0; anything else is
     * ambiguous about which site the request is for (and the gate checks Host). */
    if (f->n_host > 1 || (f->n_host == 0 && req->minor_version == 1))
        return fail(err, 400, "%s Host header field: HTTP/1.1 requires exactly one",
                    f->n_host ? "more than one" : "no");
    if (f->chunked && req->minor_version == 0)
        return fail(err, 400, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
    req->chunked = f->chunked;
    req->has_content_length = f->cl.seen;
    req->content_length = f->cl.value;
    req->keep_alive = req->minor_version == 1 ? !f->conn_close : (f->conn_keep && !f->conn_close);
    req->upgrade_websocket = f->conn_upgrade && f->upgrade_ws;
    return AF__HTTP_OK;
}

int af__http_parse_request(const char *buf, size_t len, size_t max_head, af__http_request *req,
                           af__http_error *err)
{
    /* Bytes past max_head can only belong to a head that is too large: never scan them. */
    const char *end = buf + (len > max_head ? max_head : len);
    const char *p = buf;

    /* Everything but the header array (filled up to n_headers only). */
    memset(req, 0, offsetof(af__http_request, headers));
    memset(&req->n_headers, 0, sizeof(*req) - offsetof(af__http_request, n_headers));

    framing f = {0};
    int rc = parse_request_line(buf, end, &p, req, err);
    if (rc == AF__HTTP_OK)
        rc = parse_fields(buf, end, &p, req, &f, err);
    if (rc == AF__HTTP_INCOMPLETE) {
        if (len > max_head)
            return fail(err, 431,
                        "the request head exceeds %zu bytes (no empty line ending it yet)",
                        max_head);
        return AF__HTTP_INCOMPLETE;
    }
    if (rc != AF__HTTP_OK)
        return rc;
    req->head_len = (size_t)(p - buf);
    return judge_framing(&f, buf, req, err);
}

const char *af__http_header_get(const af__http_request *req, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i].name_len == n &&
            af__str_ieq(req->headers[i].name, req->headers[i].name_len, name)) {
            if (len)
                *len = req->headers[i].value_len;
            return req->headers[i].value;
        }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunked transfer coding.                                                                  */

enum {
    CH_SIZE,       /* hex digits */
    CH_BWS,        /* after the size: optional whitespace before ';' or the line end */
    CH_EXT,        /* a chunk extension (after ';') up to the line end */
    CH_SIZE_LF,    /* LF after the size line's CR */
    CH_DATA,       /* chunk data */
    CH_DATA_CR,    /* CR (or LF) after the data */
    CH_DATA_LF,    /* LF after CR */
    CH_TRAILER,    /* a trailer line (or the empty line ending the body) */
    CH_TRAILER_LF, /* LF after a trailer line's CR */
    CH_DONE,
};

#define CH_LINE_MAX 8192

void af__http_chunked_init(af__http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

/* Long on purpose: one byte-at-a-time state machine whose every state sits in one switch, so
 * the whole grammar of a chunked body reads in one place and the per-byte loop makes no
 * calls; splitting the states into functions would scatter the transitions. */
long af__http_chunked_feed(af__http_chunked *c, const char *in, size_t len, af_buf *out,
                           size_t limit, bool *done, af__http_error *err)
{
    /* Extensions and trailer lines may hold anything but control characters (HTAB allowed),
     * and a CR must be followed by LF: parsers that disagree on where such a line ends are
     * what chunked-body smuggling feeds on. */
    size_t i = 0;
    while (i < len && c->state != CH_DONE) {
        char ch = in[i];
        size_t at = c->consumed + i;
        switch (c->state) {
        case CH_SIZE: {
            int h = af__hex_digit(ch);
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
            } else if (ch == ' ' || ch == '\t') {
                c->state = CH_BWS;
            } else if (ch == ';' || ch == '\r' || ch == '\n') {
                c->state = CH_EXT;
            } else {
                return fail(err, 400,
                            "chunked body: expected ';' or CRLF after the chunk size, not 0x%02x, "
                            "at byte %zu",
                            (unsigned char)ch, at);
            }
            break;
        }
        case CH_BWS:
            /* Only ';' or the line end may follow the size's whitespace: "11 zz" is not an
             * extension, and parsers that skip it disagree on the chunk's size. */
            if (ch == ';' || ch == '\r' || ch == '\n') {
                c->state = CH_EXT;
            } else if (ch != ' ' && ch != '\t') {
                return fail(err, 400,
                            "chunked body: expected ';' or CRLF after the chunk size, not 0x%02x, "
                            "at byte %zu",
                            (unsigned char)ch, at);
            } else if (++c->line_len > CH_LINE_MAX) {
                return fail(err, 400, "chunked body: a chunk size line longer than %d bytes",
                            CH_LINE_MAX);
            } else {
                i++;
            }
            break;
        case CH_EXT:
        case CH_SIZE_LF:
            i++;
            if (ch == '\n') {
                c->line_len = 0;
                if (c->remaining == 0) {
                    c->state = CH_TRAILER;
                } else {
                    if (c->remaining > limit || out->len > limit - c->remaining)
                        return fail(err, 413, "request body exceeds %zu bytes", limit);
                    c->state = CH_DATA;
                }
            } else if (c->state == CH_SIZE_LF) {
                return fail(err, 400, "chunked body: expected LF after CR at byte %zu", at);
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (!is_vbyte(ch)) {
                return fail(err, 400,
                            "chunked body: a control character in a chunk extension at byte %zu",
                            at);
            } else if (++c->line_len > CH_LINE_MAX) {
                return fail(err, 400, "chunked body: a chunk size line longer than %d bytes",
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
        case CH_TRAILER_LF:
            i++;
            if (ch == '\n') {
                c->state = c->line_len == 0 ? CH_DONE : CH_TRAILER;
                c->line_len = 0;
            } else if (c->state == CH_TRAILER_LF) {
                return fail(err, 400, "chunked body: expected LF after CR at byte %zu", at);
            } else if (ch == '\r') {
                c->state = CH_TRAILER_LF;
            } else if (!is_vbyte(ch)) {
                return fail(err, 400,
                            "chunked body: a control character in a trailer field at byte %zu", at);
            } else if (++c->line_len > CH_LINE_MAX) {
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
            return af__pct_decode(v, (size_t)(pair + plen - v), true, out, cap, NULL) == 0;
        }
        i = j + 1;
    }
    return false;
}
