/*
 * libFuzzer target: the daemon's HTTP/1.1 framing (src/server/http_parse.c) and what the
 * transaction does next with a parsed head. The input is fed to the request-head parser; when
 * it parses, the path goes to route matching (a NUL-terminated copy, as txn.c makes), a
 * chunked body (the bytes after the head) to the chunked decoder (limit 4 KiB), and the query
 * string to the argument getter.
 * Properties checked: no crash; on success every slice lies inside the input, head_len does
 * not exceed it and every shorter prefix is incomplete (the single-pass parser judges lines
 * as they end, so a prefix of a valid head must never be refused); on failure the status is
 * one the daemon can answer and the message is a non-empty string; the decoder never consumes
 * more than it was given nor decodes past its limit, and gives the same result fed in two
 * pieces as in one; a matched route accepts the method and its parameters are segments.
 */
#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"
#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 4096
#define BODY_LIMIT 4096

static void inside(const char *base, size_t size, const char *p, size_t n)
{
    if (n && (!p || p < base || p + n > base + size))
        abort();
}

static bool status_ok(int status)
{
    return status == 400 || status == 413 || status == 431 || status == 501 || status == 505;
}

static void check_error(const af__http_error *e)
{
    if (!e->message[0] || memchr(e->message, '\0', sizeof(e->message)) == NULL ||
        !status_ok(e->status))
        abort();
}

static unsigned method_bit(const af__http_request *r)
{
    static const struct {
        const char *name;
        unsigned bit;
    } m[] = {
        {"GET", AF__M_GET},       {"POST", AF__M_POST},   {"PUT", AF__M_PUT},
        {"DELETE", AF__M_DELETE}, {"PATCH", AF__M_PATCH}, {"OPTIONS", AF__M_OPTIONS},
        {"HEAD", AF__M_HEAD},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (r->method_len == strlen(m[i].name) && memcmp(r->method, m[i].name, r->method_len) == 0)
            return m[i].bit;
    return 0;
}

static void check_route(const af__http_request *r)
{
    unsigned method = method_bit(r);
    char path[512];
    if (!method || r->path_len >= sizeof(path))
        return;
    memcpy(path, r->path, r->path_len);
    path[r->path_len] = '\0';
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    unsigned allowed = 0;
    int i = af__route_match(path, method, &allowed, params);
    if (i < 0)
        return;
    if ((size_t)i >= af__nroutes || !(af__routes[i].methods & method) || !(allowed & method))
        abort();
    /* Only the pattern's own parameters are filled in (the rest of params is unspecified). */
    int np = 0;
    for (const char *b = af__routes[i].pattern; (b = strchr(b, '{')) != NULL; b++)
        np++;
    if (np > AF__MAX_PARAMS)
        abort();
    for (int k = 0; k < np; k++)
        if (!params[k][0] || memchr(params[k], '\0', AF_GPU_ID_MAX) == NULL ||
            strchr(params[k], '/'))
            abort();
}

/* Decodes body[0..n) in one call and in two (split at `split`); both must agree. */
static void check_chunked(const char *body, size_t n, size_t split)
{
    af__http_chunked c1, c2;
    af__http_chunked_init(&c1);
    af__http_chunked_init(&c2);
    af_buf o1, o2;
    af__buf_init(&o1);
    af__buf_init(&o2);
    af__http_error e1, e2;
    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));
    bool d1 = false, d2 = false;
    long n1 = af__http_chunked_feed(&c1, body, n, &o1, BODY_LIMIT, &d1, &e1);
    if (n1 > (long)n || o1.len > BODY_LIMIT || (n1 >= 0 && !d1 && (size_t)n1 != n))
        abort();
    if (n1 < 0) {
        if (n1 != AF__HTTP_ERROR || (e1.status != 400 && e1.status != 413))
            abort();
        check_error(&e1);
    }
    long a = af__http_chunked_feed(&c2, body, split, &o2, BODY_LIMIT, &d2, &e2);
    long n2 = a;
    if (a >= 0 && !d2) {
        if ((size_t)a != split)
            abort();
        long b = af__http_chunked_feed(&c2, body + split, n - split, &o2, BODY_LIMIT, &d2, &e2);
        n2 = b < 0 ? b : a + b;
    }
    if ((n1 < 0) != (n2 < 0) || (n1 < 0 && e1.status != e2.status))
        abort();
    if (n1 >= 0 && (n1 != n2 || d1 != d2 || o1.len != o2.len ||
                    (o1.len && memcmp(o1.data, o2.data, o1.len) != 0)))
        abort();
    af__buf_clear(&o1);
    af__buf_clear(&o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    af__http_request r;
    af__http_error e;
    memset(&e, 0, sizeof(e));
    int rc = af__http_parse_request(in, size, MAX_HEAD, &r, &e);
    if (rc == AF__HTTP_INCOMPLETE)
        return 0;
    if (rc != AF__HTTP_OK) {
        if (rc != AF__HTTP_ERROR)
            abort();
        check_error(&e);
        return 0;
    }
    if (r.head_len > size || r.head_len > MAX_HEAD || r.n_headers > AF__HTTP_MAX_HEADERS ||
        r.method_len == 0 || r.path_len == 0)
        abort();
    inside(in, r.head_len, r.method, r.method_len);
    inside(in, r.head_len, r.target, r.target_len);
    if (!(r.path_len == 1 && r.path[0] == '/'))
        inside(in, r.head_len, r.path, r.path_len);
    if (r.query)
        inside(in, r.head_len, r.query, r.query_len);
    for (size_t i = 0; i < r.n_headers; i++) {
        inside(in, r.head_len, r.headers[i].name, r.headers[i].name_len);
        inside(in, r.head_len, r.headers[i].value, r.headers[i].value_len);
    }
    size_t head_len = r.head_len;
    af__http_request pr;
    af__http_error pe;
    if (af__http_parse_request(in, head_len - 1, MAX_HEAD, &pr, &pe) != AF__HTTP_INCOMPLETE ||
        af__http_parse_request(in, head_len / 2, MAX_HEAD, &pr, &pe) != AF__HTTP_INCOMPLETE)
        abort();

    check_route(&r);
    if (r.chunked) {
        size_t rest = size - head_len;
        check_chunked(in + head_len, rest, rest ? data[size - 1] % (rest + 1) : 0);
    }
    if (r.query) {
        char v[64];
        if (af__http_query_arg(r.query, r.query_len, "limit", v, sizeof(v)) &&
            memchr(v, '\0', sizeof(v)) == NULL)
            abort();
    }
    return 0;
}
