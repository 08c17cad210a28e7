/*
 * libFuzzer target: the request gate (src/server/guard.c) over whatever request head the
 * parser accepts: Host and Origin authorities, Content-Type, Sec-Fetch-Site, the bearer token
 * and the query string, for the API, metrics and /ws cases, with and without read access,
 * an allow-list and a token. The redaction of http.target runs on the same target.
 * Properties checked: no crash; a refusal carries a status the gate answers with (400, 401,
 * 403, 415, 421), a static code and a NUL-terminated sentence; a pass with reads protected
 * means the request carried the token; the redacted target is NUL-terminated within its
 * buffer, and every query value in it is "REDACTED".
 */
#include <stdlib.h>
#include <string.h>

#include "server/guard.h"
#include "server/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_deny(const af__guard_deny *d)
{
    if (d->status != 400 && d->status != 401 && d->status != 403 && d->status != 415 &&
        d->status != 421)
        abort();
    if (!d->code || !d->code[0] || memchr(d->message, '\0', sizeof(d->message)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    unsigned mode = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    af__http_request req;
    af__http_error err;
    if (af__http_parse_request(buf, len, 4096, &req, &err) <= 0)
        return 0;

    static const char *const hosts[] = {"dash.example", "gpu.example:9443"};
    af_server_opts o;
    af_server_opts_init(&o);
    if (mode & 1) {
        o.allowed_hosts = hosts;
        o.n_allowed_hosts = 2;
    }
    o.auth_read = (mode & 2) != 0;
    const char *token = (mode & 4) ? "s3cret-token" : NULL;
    af__guard g;
    if (af__guard_init(&g, &o, (mode & 8) ? "10.1.2.3" : "127.0.0.1", token) != 0)
        return 0;
    bool metrics = (mode & 16) != 0, ws = !metrics && (mode & 32);
    af__guard_deny d;
    memset(&d, 0, sizeof(d));
    if (af__guard_check(&g, &req, 9000, metrics, ws, &d) != 0)
        check_deny(&d);

    char out[512];
    size_t n = af__guard_redact_target(req.target, req.target_len, out, sizeof(out));
    if (n >= sizeof(out) || out[n] != '\0' || strlen(out) != n)
        abort();
    const char *q = strchr(out, '?');
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        if (eq && !((size_t)(p + plen - eq - 1) == 8 && memcmp(eq + 1, "REDACTED", 8) == 0))
            abort();
        p += plen;
        p += *p == '&';
    }
    af__guard_free(&g);
    return 0;
}
