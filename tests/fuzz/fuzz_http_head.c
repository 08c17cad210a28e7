/*
 * libFuzzer target: the daemon's HTTP/1.1 framing (src/server/http_parse.c). The input is fed
 * to the request-head parser; when it parses and declares a chunked body, the bytes after the
 * head go to the chunked decoder (limit 4 KiB), then the query string to the argument getter.
 * Properties checked: no crash; on success every slice lies inside the input and head_len
 * does not exceed it; on failure the status is one the daemon can answer and the message is a
 * non-empty string; the decoder never consumes more than it was given nor decodes past its
 * limit.
 */
#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *base, size_t size, const char *p, size_t n)
{
    if (n && (!p || p < base || p + n > base + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    af__http_request r;
    af__http_error e;
    memset(&e, 0, sizeof(e));
    int rc = af__http_parse_request(in, size, 4096, &r, &e);
    if (rc == AF__HTTP_INCOMPLETE)
        return 0;
    if (rc != AF__HTTP_OK) {
        if (rc != AF__HTTP_ERROR || !e.message[0] ||
            memchr(e.message, '\0', sizeof(e.message)) == NULL ||
            (e.status != 400 && e.status != 431 && e.status != 501 && e.status != 505))
            abort();
        return 0;
    }
    if (r.head_len > size || r.n_headers > AF__HTTP_MAX_HEADERS || r.method_len == 0)
        abort();
    inside(in, size, r.method, r.method_len);
    inside(in, size, r.target, r.target_len);
    if (!(r.path_len == 1 && r.path[0] == '/'))
        inside(in, size, r.path, r.path_len);
    if (r.query)
        inside(in, size, r.query, r.query_len);
    for (size_t i = 0; i < r.n_headers; i++) {
        inside(in, size, r.headers[i].name, r.headers[i].name_len);
        inside(in, size, r.headers[i].value, r.headers[i].value_len);
    }
    if (r.chunked) {
        af__http_chunked c;
        af__http_chunked_init(&c);
        af_buf out;
        af__buf_init(&out);
        bool done = false;
        size_t rest = size - r.head_len;
        long n = af__http_chunked_feed(&c, in + r.head_len, rest, &out, 4096, &done, &e);
        if (n > (long)rest || out.len > 4096 ||
            (n < 0 && (n != AF__HTTP_ERROR || (e.status != 400 && e.status != 413))))
            abort();
        af__buf_free(&out);
    }
    if (r.query) {
        char v[64];
        if (af__http_query_arg(r.query, r.query_len, "limit", v, sizeof(v)) &&
            memchr(v, '\0', sizeof(v)) == NULL)
            abort();
    }
    return 0;
}
