/*
 * HTTP transport on libcurl for the network exporters.
 *
 * The easy handle is driven through a private multi handle instead of curl_easy_perform so
 * that shutdown can interrupt a request at once (curl_multi_wakeup) instead of waiting for
 * libcurl's next progress callback, and so the connection cache outlives each request
 * (keep-alive between exports).
 *
 * A forked child inherits handles that may be in the middle of the parent's request (libcurl
 * then refuses every new one) and that share the parent's connection; its first request
 * builds new ones. The old ones are abandoned, not cleaned up: cleanup could write a TLS
 * close_notify into the connection the parent is still using.
 */
#define AF_LOG_COMPONENT "export"

#include "export/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "agentaflow/log.h"
#include "util/str.h"

struct af__http_client {
    /* Atomic because af__http_client_abort reads it from another thread while a forked
     * child's first request may be replacing it. */
    _Atomic(CURLM *) multi;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *user_agent;
    char *ca_file;
    char *client_cert;
    char *client_key;
    char redacted_url[256];
    bool gzip;
    bool insecure; /* TLS verification off (tests only) */
    bool forked;   /* in a forked child: the handles are the parent's */
    atomic_bool aborted;
    af_buf gz;              /* compressed request body, reused between exports */
    af__http_response *cur; /* the response the callbacks fill */
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe on every libcurl build; do it exactly once. It is never
 * undone because other code in the process may use libcurl too. */
static void curl_global_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void af__http_response_init(af__http_response *r)
{
    memset(r, 0, sizeof(*r));
    af__buf_init(&r->body);
}

void af__http_response_reset(af__http_response *r)
{
    r->status = 0;
    r->retryable = false;
    r->body_too_large = false;
    af__buf_reset(&r->body);
    r->content_type[0] = '\0';
    r->retry_after[0] = '\0';
    r->error[0] = '\0';
}

void af__http_response_free(af__http_response *r)
{
    af__buf_clear(&r->body);
}

int af__http_url_check(const char *url)
{
    if (!url)
        return -EINVAL;
    size_t skip;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return -EINVAL;
    char c = url[skip];
    if (c == '\0' || c == '/' || c == '?' || c == '#')
        return -EINVAL;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return -EINVAL;
    return 0;
}

void af__http_url_redact(const char *url, char *out, size_t out_len)
{
    if (!out_len)
        return;
    out[0] = '\0';
    if (!url)
        return;
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    size_t path_len = strcspn(auth + auth_len, "?#");
    size_t pos = 0;
#define AF_REDACT_PUT(p, n)                                                                        \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (n_ > out_len - 1 - pos)                                                                \
            n_ = out_len - 1 - pos;                                                                \
        memcpy(out + pos, (p), n_);                                                                \
        pos += n_;                                                                                 \
    } while (0)
    AF_REDACT_PUT(url, (size_t)(auth - url));
    AF_REDACT_PUT(host, (size_t)(auth + auth_len - host));
    AF_REDACT_PUT(auth + auth_len, path_len);
#undef AF_REDACT_PUT
    out[pos] = '\0';
}

int af__gzip(const void *in, size_t n, af_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib framing. */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    int rc = 0;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    for (;;) {
        if (!af__buf_reserve(out, 64 * 1024)) {
            rc = -ENOMEM;
            break;
        }
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        int zr = deflate(&zs, Z_FINISH);
        out->len = out->cap - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = -ENOMEM;
            break;
        }
    }
    deflateEnd(&zs);
    return rc;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    af__http_client *c = user;
    size_t n = size * nmemb;
    af__http_response *r = c->cur;
    if (r->body.len + n > AF__HTTP_MAX_RESPONSE) {
        /* Returning less than n makes libcurl stop with CURLE_WRITE_ERROR. */
        r->body_too_large = true;
        return 0;
    }
    af__buf_append(&r->body, p, n);
    return r->body.failed ? 0 : n;
}

/* Copies a header's value (trimmed) when the line is "name: value". */
static bool header_value(const char *line, size_t n, const char *name, char *out, size_t out_len)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return false;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= out_len)
        len = out_len - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *user)
{
    af__http_client *c = user;
    size_t n = size * nmemb;
    af__http_response *r = c->cur;
    /* A new status line (after "100 Continue", for instance) starts a new header block. */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        r->retry_after[0] = '\0';
        r->content_type[0] = '\0';
        return n;
    }
    if (!header_value(p, n, "retry-after", r->retry_after, sizeof(r->retry_after)))
        header_value(p, n, "content-type", r->content_type, sizeof(r->content_type));
    return n;
}

/* RFC 9110 token characters, for header names. */
static bool header_name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

static bool header_value_ok(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

static int add_header(struct curl_slist **list, const char *name, const char *value)
{
    af_buf b;
    af__buf_init(&b);
    af__buf_printf(&b, "%s: %s", name, value);
    af__buf_terminate(&b);
    struct curl_slist *n = b.failed ? NULL : curl_slist_append(*list, (const char *)b.data);
    af__buf_clear(&b);
    if (!n)
        return -ENOMEM;
    *list = n;
    return 0;
}

static int check_file(const char *what, const char *path)
{
    if (path && access(path, R_OK) != 0) {
        af_log(AF_LOG_ERROR, "HTTP exporter: %s file \"%s\" is not readable: %s", what, path,
               strerror(errno));
        return -EINVAL;
    }
    return 0;
}

void af__http_client_free(af__http_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    curl_slist_free_all(c->headers);
    free(c->url);
    free(c->user_agent);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    af__buf_clear(&c->gz);
    free(c);
}

/* Builds the multi and easy handles from the stored settings; assigns them only when all of
 * it worked. 0 or -EINVAL (libcurl refused a setting) or -ENOMEM. */
static int make_handles(af__http_client *c)
{
    CURLM *multi = curl_multi_init();
    CURL *e = curl_easy_init();
    if (!multi || !e) {
        curl_easy_cleanup(e);
        curl_multi_cleanup(multi);
        return -ENOMEM;
    }
    bool ok = curl_easy_setopt(e, CURLOPT_URL, c->url) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_WRITEDATA, c) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_HEADERDATA, c) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    if (ok && c->ca_file)
        ok = curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) == CURLE_OK;
    if (ok && c->client_cert)
        ok = curl_easy_setopt(e, CURLOPT_SSLCERT, c->client_cert) == CURLE_OK;
    if (ok && c->client_key)
        ok = curl_easy_setopt(e, CURLOPT_SSLKEY, c->client_key) == CURLE_OK;
    if (ok && c->insecure)
        ok = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    if (!ok) {
        curl_easy_cleanup(e);
        curl_multi_cleanup(multi);
        return -EINVAL;
    }
    c->easy = e;
    c->multi = multi;
    return 0;
}

/* The options a client cannot work with, said in the log (redacted is the URL without its
 * secrets): -EINVAL, else 0. */
static int check_opts(const af__http_client_opts *o, const char *redacted)
{
    if (af__http_url_check(o->url) != 0) {
        af_log(AF_LOG_ERROR,
               "HTTP exporter: endpoint \"%s\" is not an http:// or https:// URL with a host",
               redacted);
        return -EINVAL;
    }
    for (size_t i = 0; i < o->n_headers; i++) {
        if (!header_name_ok(o->headers[i].name) || !header_value_ok(o->headers[i].value)) {
            /* The value is a secret by assumption: name only. */
            af_log(AF_LOG_ERROR,
                   "HTTP exporter: header \"%s\" has an invalid name or a value "
                   "with a line break",
                   o->headers[i].name ? o->headers[i].name : "(null)");
            return -EINVAL;
        }
    }
    if (check_file("CA certificate", o->tls.ca_file) ||
        check_file("client certificate", o->tls.client_cert) ||
        check_file("client key", o->tls.client_key))
        return -EINVAL;
    if (o->tls.client_key && !o->tls.client_cert) {
        af_log(AF_LOG_ERROR, "HTTP exporter: a client key needs a client certificate");
        return -EINVAL;
    }
    return 0;
}

/* The request headers: Content-Type, Content-Encoding with gzip, an empty Expect, then the
 * configured ones. 0 or -ENOMEM. */
static int make_headers(af__http_client *c, const af__http_client_opts *o)
{
    /* "Expect:" with no value stops libcurl from waiting for "100 Continue" on large bodies,
     * which collectors rarely send and which would cost a second per export. */
    if (add_header(&c->headers, "Content-Type",
                   o->content_type ? o->content_type : "application/octet-stream") ||
        (c->gzip && add_header(&c->headers, "Content-Encoding", "gzip")))
        return -ENOMEM;
    struct curl_slist *n = curl_slist_append(c->headers, "Expect:");
    if (!n)
        return -ENOMEM;
    c->headers = n;
    for (size_t i = 0; i < o->n_headers; i++)
        if (add_header(&c->headers, o->headers[i].name, o->headers[i].value))
            return -ENOMEM;
    return 0;
}

int af__http_client_new(const af__http_client_opts *o, af__http_client **out)
{
    *out = NULL;
    pthread_once(&curl_once, curl_global_once);
    if (curl_init_result != CURLE_OK) {
        af_log(AF_LOG_ERROR, "HTTP exporter: libcurl failed to initialise: %s",
               curl_easy_strerror(curl_init_result));
        return -ENOMEM;
    }
    char redacted[256];
    af__http_url_redact(o->url, redacted, sizeof(redacted));
    if (check_opts(o, redacted) != 0)
        return -EINVAL;

    int rc = -ENOMEM;
    af__http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    af__buf_init(&c->gz);
    atomic_init(&c->aborted, false);
    c->gzip = o->gzip;
    af__strlcpy(c->redacted_url, redacted, sizeof(c->redacted_url));
    c->url = af__strdup(o->url);
    c->user_agent = af__strdup(o->user_agent ? o->user_agent : "agentaflow");
    if (!c->url || !c->user_agent)
        goto fail;
    if ((o->tls.ca_file && !(c->ca_file = af__strdup(o->tls.ca_file))) ||
        (o->tls.client_cert && !(c->client_cert = af__strdup(o->tls.client_cert))) ||
        (o->tls.client_key && !(c->client_key = af__strdup(o->tls.client_key))))
        goto fail;
    if (make_headers(c, o) != 0)
        goto fail;
    c->insecure = o->tls.insecure_skip_verify;
    if ((rc = make_handles(c)) != 0) {
        if (rc == -EINVAL)
            af_log(AF_LOG_ERROR, "HTTP exporter: libcurl rejected the settings for %s", redacted);
        goto fail;
    }
    if (c->insecure)
        af_log(AF_LOG_WARN,
               "HTTP exporter: TLS certificate verification is OFF for %s; anyone on the path "
               "can read and change exported data (use only in tests)",
               redacted);
    *out = c;
    return 0;
fail:
    af__http_client_free(c);
    return rc;
}

void af__http_client_abort(af__http_client *c)
{
    atomic_store(&c->aborted, true);
    curl_multi_wakeup(c->multi);
}

void af__http_client_atfork_child(af__http_client *c)
{
    c->forked = true;
    c->cur = NULL;
}

static bool transport_retryable(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

/* Milliseconds left until the deadline, at least 1 so libcurl never reads 0 as "no limit". */
static long remaining_ms(uint64_t deadline_ns, uint64_t now)
{
    if (now >= deadline_ns)
        return 1;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > (uint64_t)LONG_MAX / 2 ? LONG_MAX / 2 : (long)ms;
}

int af__http_client_prepare(af__http_client *c, const void *body, size_t len, const void **wire,
                            size_t *wire_len, char *error, size_t error_len)
{
    if (len > AF__HTTP_MAX_REQUEST) {
        snprintf(error, error_len, "request of %zu bytes exceeds the %u MiB limit; not sent", len,
                 AF__HTTP_MAX_REQUEST >> 20);
        return -EMSGSIZE;
    }
    *wire = body;
    *wire_len = len;
    if (c->gzip) {
        af__buf_reset(&c->gz);
        if (af__gzip(body, len, &c->gz)) {
            snprintf(error, error_len, "out of memory compressing the request");
            return -ENOMEM;
        }
        *wire = c->gz.data;
        *wire_len = c->gz.len;
    }
    return 0;
}

/* Refuses a request after shutdown; in a forked child, first re-creates the handles. */
static int check_usable(af__http_client *c, af__http_response *resp)
{
    if (atomic_load(&c->aborted)) {
        snprintf(resp->error, sizeof(resp->error), "exporter is shut down");
        return AF_ESHUTDOWN;
    }
    if (c->forked) {
        int mrc = make_handles(c);
        if (mrc != 0) {
            snprintf(resp->error, sizeof(resp->error), "cannot create a connection after fork: %s",
                     af_strerror(mrc));
            return AF_EEXPORT;
        }
        c->forked = false;
        /* The store of the new multi handle above comes before this load: a shutdown that
         * woke the old handle has set the flag we see here. */
        if (atomic_load(&c->aborted)) {
            snprintf(resp->error, sizeof(resp->error), "exporter is shut down");
            return AF_ESHUTDOWN;
        }
    }
    return 0;
}

/* Runs the added transfer until it is done, the client is aborted or the deadline passes,
 * polling at least once a second so an abort is seen. 0, AF_ESHUTDOWN, AF_ETIMEDOUT or
 * AF_EEXPORT (resp->error says why for the last). */
static int run_transfer(af__http_client *c, uint64_t deadline_ns, af__http_response *resp)
{
    bool limited = deadline_ns != UINT64_MAX;
    int running = 1;
    for (;;) {
        if (atomic_load(&c->aborted))
            return AF_ESHUTDOWN;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) {
            snprintf(resp->error, sizeof(resp->error), "libcurl: %s", curl_multi_strerror(mc));
            return AF_EEXPORT;
        }
        if (!running)
            return 0;
        uint64_t now = af_monotonic_ns();
        if (now >= deadline_ns)
            return AF_ETIMEDOUT;
        long wait = limited ? remaining_ms(deadline_ns, now) : 1000;
        if (wait > 1000)
            wait = 1000;
        curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
    }
}

int af__http_client_post(af__http_client *c, const void *wire, size_t len, uint64_t deadline_ns,
                         af__http_response *resp)
{
    af__http_response_reset(resp);
    int rc = check_usable(c, resp);
    if (rc != 0)
        return rc;
    uint64_t now = af_monotonic_ns();
    if (now >= deadline_ns) {
        snprintf(resp->error, sizeof(resp->error), "no time left before the deadline");
        return AF_ETIMEDOUT;
    }
    bool limited = deadline_ns != UINT64_MAX;
    long left = limited ? remaining_ms(deadline_ns, now) : 0;
    CURL *e = c->easy;
    c->cur = resp;
    c->errbuf[0] = '\0';
    /* Both timeouts come from the export deadline: a dead collector can never hold an export
     * (or the shutdown that waits for it) past its deadline. 0 means "none" to libcurl. */
    if (curl_easy_setopt(e, CURLOPT_POSTFIELDS, wire) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, left) != CURLE_OK ||
        curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        snprintf(resp->error, sizeof(resp->error), "libcurl refused the request");
        return AF_EEXPORT;
    }

    rc = run_transfer(c, deadline_ns, resp);

    CURLcode code = CURLE_OK;
    if (rc == 0) {
        int queued;
        CURLMsg *m;
        while ((m = curl_multi_info_read(c->multi, &queued)))
            if (m->msg == CURLMSG_DONE && m->easy_handle == e)
                code = m->data.result;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    curl_multi_remove_handle(c->multi, e);
    c->cur = NULL;
    if (rc == AF_ETIMEDOUT)
        snprintf(resp->error, sizeof(resp->error), "no response from %.200s before the deadline",
                 c->redacted_url);
    else if (rc == AF_ESHUTDOWN)
        snprintf(resp->error, sizeof(resp->error), "request to %.200s cancelled by shutdown",
                 c->redacted_url);
    if (rc != 0 || code == CURLE_OK)
        return rc;

    if (resp->body_too_large) {
        /* The status is known; the caller reports the oversized body as non-retryable. */
        snprintf(resp->error, sizeof(resp->error), "response body over %u MiB",
                 AF__HTTP_MAX_RESPONSE >> 20);
        return 0;
    }
    snprintf(resp->error, sizeof(resp->error), "%s",
             c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
    /* A failure after the status line arrived is not "no response": the collector may have
     * taken the data, so retrying could duplicate it. */
    resp->retryable = transport_retryable(code) && resp->status == 0;
    if (code == CURLE_OPERATION_TIMEDOUT && af_monotonic_ns() + 1000000 >= deadline_ns)
        return AF_ETIMEDOUT;
    return AF_EEXPORT;
}

void af__http_text_excerpt(const af_buf *body, char *out, size_t out_len)
{
    out[0] = '\0';
    size_t n = body->len < out_len - 1 ? body->len : out_len - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = body->data[i];
        if (ch == 0 || (ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f) {
            out[0] = '\0';
            return;
        }
        out[i] = ch < 0x20 ? ' ' : (char)ch;
    }
    out[n] = '\0';
}

bool af__http_log_allowed(uint64_t *last_ns)
{
    uint64_t now = af_monotonic_ns();
    if (*last_ns && now - *last_ns < 10000000000u)
        return false;
    *last_ns = now;
    return true;
}

void af__http_health_init(af__http_health *hh, const char *type, const char *url)
{
    memset(&hh->h, 0, sizeof(hh->h));
    hh->failure_log_ns = 0;
    hh->failures_unlogged = 0;
    pthread_mutex_init(&hh->mu, NULL);
    af__strlcpy(hh->h.type, type, sizeof(hh->h.type));
    af__http_url_redact(url, hh->h.endpoint, sizeof(hh->h.endpoint));
}

void af__http_health_destroy(af__http_health *hh)
{
    pthread_mutex_destroy(&hh->mu);
}

void af__http_health_success(af__http_health *hh, uint64_t spans, uint64_t rejected)
{
    uint64_t now = af_now_ns();
    if (rejected > spans) /* a collector's count is not trusted to be consistent */
        rejected = spans;
    pthread_mutex_lock(&hh->mu);
    hh->h.last_success_ns = now;
    hh->h.consecutive_failures = 0;
    hh->h.spans_exported += spans - rejected;
    hh->h.spans_rejected += rejected;
    pthread_mutex_unlock(&hh->mu);
}

void af__http_health_failure(af__http_health *hh, uint64_t spans, const char *error)
{
    uint64_t now = af_now_ns();
    pthread_mutex_lock(&hh->mu);
    hh->h.last_failure_ns = now;
    hh->h.consecutive_failures++;
    hh->h.spans_failed += spans;
    af__strlcpy(hh->h.last_error, error, sizeof(hh->h.last_error));
    pthread_mutex_unlock(&hh->mu);
    if (!af__http_log_allowed(&hh->failure_log_ns)) {
        hh->failures_unlogged++;
        return;
    }
    if (hh->failures_unlogged)
        af_log(AF_LOG_WARN,
               "%s: export of %llu spans to %s failed: %s (and %llu more failures "
               "in the last 10 s)",
               hh->h.type, (unsigned long long)spans, hh->h.endpoint, error,
               (unsigned long long)hh->failures_unlogged);
    else
        af_log(AF_LOG_WARN, "%s: export of %llu spans to %s failed: %s", hh->h.type,
               (unsigned long long)spans, hh->h.endpoint, error);
    hh->failures_unlogged = 0;
}

void af__http_health_retrying(af__http_health *hh, const char *error)
{
    uint64_t now = af_now_ns();
    pthread_mutex_lock(&hh->mu);
    hh->h.retries++;
    hh->h.last_failure_ns = now;
    af__strlcpy(hh->h.last_error, error, sizeof(hh->h.last_error));
    pthread_mutex_unlock(&hh->mu);
}

void af__http_health_get(af__http_health *hh, af_exporter_health *out)
{
    pthread_mutex_lock(&hh->mu);
    *out = hh->h;
    pthread_mutex_unlock(&hh->mu);
}

void af__http_health_atfork(af__http_health *hh, af_fork_phase phase)
{
    if (phase == AF_FORK_PREPARE)
        pthread_mutex_lock(&hh->mu);
    else if (phase == AF_FORK_PARENT)
        pthread_mutex_unlock(&hh->mu);
    else
        pthread_mutex_init(&hh->mu, NULL);
}
