/*
 * TLS end-to-end: the real daemon (argv[1]) with server.tls.* pointing at certificates made at
 * test time by the `openssl` command (Debian package openssl) from a throw-away CA, driven by
 * libcurl and by a small OpenSSL client (for keep-alive across a reload, the peer certificate
 * and a hand-written WebSocket upgrade). Exits 77 (skipped) without the openssl command.
 *
 * Every wait polls with a deadline; nothing sleeps blindly.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"

/* ---------------------------------------------------------------------------------------- */
/* Certificates.                                                                             */

static char g_ca[512], g_other_ca[512], g_client_cert[512], g_client_key[512];

static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[8192];
    snprintf(full, sizeof(full), "cd '%s' && (%s) >>openssl.log 2>&1", g_tmp, cmd);
    if (system(full) != 0)
        fail_msg("failed: %s (see %s/openssl.log)", cmd, g_tmp);
}

/* An EC P-256 key and a certificate for CN=cn signed by the CA `ca` (ca.pem/ca.key), serial
 * and extended key usage as given, valid for 127.0.0.1 and localhost. */
static void make_cert(const char *ca, const char *name, const char *cn, int serial,
                      const char *usage)
{
    sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=%s\\n' > %s.ext && "
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
       "-out %s.csr -subj /CN=%s && "
       "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -set_serial %d -days 2 "
       "-out %s.pem -extfile %s.ext",
       usage, name, name, name, cn, name, ca, ca, serial, name, name);
}

static void make_ca(const char *name, const char *cn)
{
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key "
       "-out %s.pem -days 2 -subj /CN=%s -addext basicConstraints=critical,CA:TRUE "
       "-addext keyUsage=critical,keyCertSign,cRLSign",
       name, name, cn);
}

static int make_all_certs(void **state)
{
    (void)state;
    make_ca("ca", "af-test-ca");
    make_ca("other-ca", "af-other-ca");
    make_cert("ca", "old", "af-old", 4097, "serverAuth");
    make_cert("ca", "new", "af-new", 4098, "serverAuth");
    make_cert("ca", "client", "af-client", 4099, "clientAuth");
    snprintf(g_ca, sizeof(g_ca), "%s/ca.pem", g_tmp);
    snprintf(g_other_ca, sizeof(g_other_ca), "%s/other-ca.pem", g_tmp);
    snprintf(g_client_cert, sizeof(g_client_cert), "%s/client.pem", g_tmp);
    snprintf(g_client_key, sizeof(g_client_key), "%s/client.key", g_tmp);
    return 0;
}

/* The daemon's own copy of a certificate and key (tag.pem, tag.key), so a test can replace
 * them; returns the config text with client_ca (may be NULL) in out. */
static void tls_config(const char *tag, const char *from, const char *client_ca, char *out,
                       size_t cap)
{
    sh("cp %s.pem %s.pem && cp %s.key %s.key", from, tag, from, tag);
    snprintf(out, cap,
             "service_name: agentaflow-tls-it\nserver:\n  load_generator: false\n"
             "  tls:\n    cert_file: %s/%s.pem\n    key_file: %s/%s.key\n%s%s%s",
             g_tmp, tag, g_tmp, tag, client_ca ? "    client_ca_file: " : "",
             client_ca ? client_ca : "", client_ca ? "\n" : "");
}

/* ---------------------------------------------------------------------------------------- */
/* Clients.                                                                                  */

typedef struct tls_opts {
    const char *ca, *cert, *key; /* cert/key: the client certificate, or NULL */
} tls_opts;

/* One HTTPS request with libcurl (a new connection each time). CURLE_OK or curl's error;
 * the status and body in *r. */
static CURLcode https(int port, const char *method, const char *path, const char *body,
                      const tls_opts *o, resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[256];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
    FILE *sink = open_memstream(&r->body, &r->len);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_CAINFO, o->ca);
    if (o->cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, o->key);
    }
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    fclose(sink);
    return rc;
}

/* A blocking OpenSSL client connection that verifies the server against ca. */
typedef struct tls_client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
} tls_client;

static bool tls_open(tls_client *t, int port, const char *ca)
{
    memset(t, 0, sizeof(*t));
    t->fd = tcp_connect(port);
    assert_true(t->fd >= 0);
    t->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(t->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->ssl = SSL_new(t->ctx);
    SSL_set_fd(t->ssl, t->fd);
    SSL_set1_host(t->ssl, "localhost");
    bool ok = SSL_connect(t->ssl) == 1;
    ERR_clear_error();
    return ok;
}

static void tls_close(tls_client *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
}

/* The CN of the certificate the server presented. */
static void peer_cn(tls_client *t, char *out, size_t cap)
{
    X509 *x = SSL_get1_peer_certificate(t->ssl);
    assert_non_null(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
    X509_free(x);
}

/* Reads a response head, and a Content-Length body when it has one; malloc'd. */
static char *tls_response(tls_client *t)
{
    size_t len = 0, cap = 65536;
    char *b = malloc(cap);
    assert_non_null(b);
    long need = -1;
    while (len < cap - 1) {
        int n = SSL_read(t->ssl, b + len, (int)(cap - 1 - len));
        if (n <= 0)
            break;
        len += (size_t)n;
        b[len] = '\0';
        char *end = strstr(b, "\r\n\r\n");
        if (end && need < 0) {
            char *cl = strcasestr(b, "content-length:");
            need = (long)(end + 4 - b) + (cl && cl < end ? strtol(cl + 15, NULL, 10) : 0);
        }
        if (need >= 0 && (long)len >= need)
            break;
    }
    b[len] = '\0';
    return b;
}

static char *tls_get(tls_client *t, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    assert_int_equal(SSL_write(t->ssl, req, n), n);
    return tls_response(t);
}

/* Whether the daemon's log has a line containing text. */
static bool logged(const daemon_t *d, const char *text)
{
    FILE *f = fopen(d->logfile, "r");
    assert_non_null(f);
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests.                                                                                    */

/* The API (GET and POST) and the Prometheus listener over TLS with the CA; the SERVER span
 * says https; plain HTTP on the TLS port is dropped without log noise and breaks nothing. */
static void test_https_api_metrics_and_span(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("basic", "old", NULL, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_opts o = {.ca = g_ca};
    resp r;
    CURLcode rc = https(d.port, "GET", "/health", NULL, &o, &r);
    if (rc != CURLE_OK)
        fail_msg("GET /health over TLS: %s", curl_easy_strerror(rc));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"components\""));
    free(r.body);

    rc = https(d.port, "POST", "/api/v1/inference",
               "{\"model_id\":\"model-gpt\",\"input\":\"over tls\"}", &o, &r);
    assert_int_equal(rc, CURLE_OK);
    if (r.status != 200)
        fail_msg("POST over TLS: %ld %.300s", r.status, r.body);
    assert_non_null(strstr(r.body, "\"request_id\""));
    free(r.body);

    rc = https(d.mport, "GET", "/metrics", NULL, &o, &r);
    assert_int_equal(rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "agentaflow_"));
    free(r.body);

    /* Plain HTTP on the TLS port: no HTTP answer, the connection just ends. */
    int fd = tcp_connect(d.port);
    assert_true(fd >= 0);
    const char *get = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)send(fd, get, strlen(get), MSG_NOSIGNAL);
    char *ans = read_to_eof(fd);
    close(fd);
    assert_null(strstr(ans, "HTTP/1.1"));
    free(ans);
    rc = https(d.port, "GET", "/health", NULL, &o, &r);
    assert_int_equal(rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    free(r.body);

    /* The SERVER span of a request over TLS carries url.scheme https (the trace store is fed
     * by a batch processor: poll). */
    bool https_span = false;
    uint64_t deadline = now_ms() + 10000;
    while (!https_span && now_ms() < deadline) {
        rc = https(d.port, "GET", "/api/v1/traces?operation=GET%20/health", NULL, &o, &r);
        assert_int_equal(rc, CURLE_OK);
        json_t *list = json_of(&r);
        free(r.body);
        json_t *traces = json_object_get(list, "traces");
        for (size_t i = 0; i < json_array_size(traces) && !https_span; i++) {
            char path[128];
            snprintf(path, sizeof(path), "/api/v1/traces/%s",
                     json_string_value(json_object_get(json_array_get(traces, i), "trace_id")));
            assert_int_equal(https(d.port, "GET", path, NULL, &o, &r), CURLE_OK);
            json_t *tr = json_of(&r);
            free(r.body);
            json_t *spans = json_object_get(tr, "spans");
            for (size_t k = 0; k < json_array_size(spans); k++) {
                json_t *attrs = json_object_get(json_array_get(spans, k), "attributes");
                for (size_t a = 0; a < json_array_size(attrs); a++) {
                    json_t *kv = json_array_get(attrs, a);
                    const char *key = json_string_value(json_object_get(kv, "key"));
                    const char *v = json_string_value(
                        json_object_get(json_object_get(kv, "value"), "stringValue"));
                    if (key && v && !strcmp(key, "url.scheme") && !strcmp(v, "https"))
                        https_span = true;
                }
            }
            json_decref(tr);
        }
        json_decref(list);
        if (!https_span)
            pause_ms(50);
    }
    assert_true(https_span);
    assert_int_equal(daemon_stop(&d), 0);

    /* Failed handshakes are debug-level only: nothing about them at the default level. */
    FILE *f = fopen(d.logfile, "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "TLS") || strstr(line, "handshake"))
            fail_msg("unexpected log line: %s", line);
    fclose(f);
}

/* Pipelined requests for the dashboard page from a client with a tiny receive window: the
 * server's TLS writes stop part-way (WANT_WRITE), the rest waits in its output buffer and
 * later requests wait for it; every response still arrives whole and in order. */
static void test_tls_backpressure_pipelined(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("pipe", "old", NULL, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_client t;
    memset(&t, 0, sizeof(t));
    t.fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 1024;
    setsockopt(t.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(t.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {15, 0};
    setsockopt(t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    t.ctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_load_verify_locations(t.ctx, g_ca, NULL), 1);
    SSL_CTX_set_verify(t.ctx, SSL_VERIFY_PEER, NULL);
    t.ssl = SSL_new(t.ctx);
    SSL_set_fd(t.ssl, t.fd);
    assert_int_equal(SSL_connect(t.ssl), 1);

    enum { N = 200 }; /* ~1.7 MiB: more than the kernel buffers before the window closes */
    /* The first half in one TLS record, the second half one record each: the server reads
     * records ahead, and pipelined input it already holds must be served without the socket
     * becoming readable again. */
    static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static char reqs[N / 2 * sizeof(get)];
    size_t rl = 0;
    for (int i = 0; i < N / 2; i++)
        rl += (size_t)snprintf(reqs + rl, sizeof(reqs) - rl, "%s", get);
    assert_int_equal(SSL_write(t.ssl, reqs, (int)rl), (int)rl);
    for (int i = 0; i < N / 2; i++)
        assert_int_equal(SSL_write(t.ssl, get, (int)sizeof(get) - 1), (int)sizeof(get) - 1);

    size_t len = 0, cap = 4 << 20, off = 0;
    char *b = malloc(cap + 1);
    assert_non_null(b);
    int done = 0;
    long first_len = -1;
    while (done < N) {
        char *end = NULL;
        b[len] = '\0';
        if (len > off)
            end = strstr(b + off, "\r\n\r\n");
        if (end) {
            assert_int_equal(strncmp(b + off, "HTTP/1.1 200", 12), 0);
            char *cl = strcasestr(b + off, "content-length:");
            assert_true(cl && cl < end);
            long body = strtol(cl + 15, NULL, 10);
            size_t total = (size_t)(end + 4 - (b + off)) + (size_t)body;
            if (len - off >= total) {
                if (first_len < 0)
                    first_len = body;
                assert_int_equal(body, first_len);
                assert_non_null(memmem(end + 4, (size_t)body, "</html>", 7));
                off += total;
                done++;
                continue;
            }
        }
        assert_true(len < cap);
        /* Small reads, so the window stays small while the server writes. */
        int n = SSL_read(t.ssl, b + len, 512);
        if (n <= 0)
            fail_msg("connection ended after %d of %d responses", done, N);
        len += (size_t)n;
    }
    assert_true(first_len > 4096);
    free(b);
    tls_close(&t);
    assert_int_equal(daemon_stop(&d), 0);
}

/* A client trusting another CA refuses the server's certificate. */
static void test_wrong_ca_fails(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("wrongca", "old", NULL, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_opts o = {.ca = g_other_ca};
    resp r;
    assert_int_equal(https(d.port, "GET", "/health", NULL, &o, &r), CURLE_PEER_FAILED_VERIFICATION);
    free(r.body);
    assert_int_equal(https(d.mport, "GET", "/metrics", NULL, &o, &r),
                     CURLE_PEER_FAILED_VERIFICATION);
    free(r.body);
    assert_int_equal(daemon_stop(&d), 0);
}

/* With client_ca_file: no client certificate, no request (both listeners); with one, 200. */
static void test_mutual_tls(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("mtls", "old", g_ca, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_opts anon = {.ca = g_ca};
    tls_opts ident = {.ca = g_ca, .cert = g_client_cert, .key = g_client_key};
    resp r;
    CURLcode rc = https(d.port, "GET", "/health", NULL, &anon, &r);
    assert_true(rc != CURLE_OK);
    assert_int_equal(r.status, 0);
    free(r.body);
    rc = https(d.mport, "GET", "/metrics", NULL, &anon, &r);
    assert_true(rc != CURLE_OK);
    free(r.body);

    rc = https(d.port, "GET", "/health", NULL, &ident, &r);
    if (rc != CURLE_OK)
        fail_msg("with a client certificate: %s", curl_easy_strerror(rc));
    assert_int_equal(r.status, 200);
    free(r.body);
    rc = https(d.mport, "GET", "/metrics", NULL, &ident, &r);
    assert_int_equal(rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_int_equal(daemon_stop(&d), 0);
}

/* A WebSocket upgrade over TLS (wss) is answered over TLS with 101, and the first message
 * (metrics_update, sent on connect) arrives as an RFC 6455 text frame through the session. */
static void test_wss_upgrade(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("wss", "old", NULL, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_client t;
    assert_true(tls_open(&t, d.port, g_ca));
    const char *up = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(SSL_write(t.ssl, up, (int)strlen(up)), (int)strlen(up));
    char *ans = tls_response(&t);
    if (strncmp(ans, "HTTP/1.1 101", 12) != 0)
        fail_msg("wss upgrade: %.300s", ans);
    assert_non_null(strcasestr(ans, "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    /* Frame bytes that came with the 101 are after the head; read until one text frame. */
    char *head_end = strstr(ans, "\r\n\r\n") + 4;
    unsigned char buf[65536];
    size_t len = strlen(head_end);
    memcpy(buf, head_end, len);
    free(ans);
    size_t need = 2;
    while (len < sizeof(buf)) {
        if (len >= 2) {
            size_t n = buf[1] & 0x7f, hdr = 2;
            if (n == 126) {
                hdr = 4;
                n = len >= 4 ? (size_t)buf[2] << 8 | buf[3] : 0;
            }
            need = hdr + n;
            if (len >= need && n > 0)
                break;
        }
        int k = SSL_read(t.ssl, buf + len, (int)(sizeof(buf) - len));
        if (k <= 0)
            fail_msg("wss: the connection ended before a whole frame (%zu bytes)", len);
        len += (size_t)k;
    }
    assert_int_equal(buf[0], 0x81); /* FIN + text, unmasked (server frames never are) */
    assert_true(len >= need);
    assert_non_null(memmem(buf, need, "metrics_update", 14));
    tls_close(&t);
    assert_int_equal(daemon_stop(&d), 0);
}

/* SIGHUP with a new certificate: new connections get it, a keep-alive connection opened
 * before keeps working; a broken file on the next SIGHUP keeps the current certificate and
 * logs why, naming the file. */
static void test_sighup_reload(void **state)
{
    (void)state;
    char cfg[2048];
    tls_config("live", "old", NULL, cfg, sizeof(cfg));
    daemon_t d;
    daemon_start(&d, cfg, NULL, NULL);
    tls_client old;
    assert_true(tls_open(&old, d.port, g_ca));
    char cn[128];
    peer_cn(&old, cn, sizeof(cn));
    assert_string_equal(cn, "af-old");
    char *ans = tls_get(&old, "/health");
    assert_int_equal(strncmp(ans, "HTTP/1.1 200", 12), 0);
    free(ans);

    /* Replaced the way deployment tools do it: new files renamed over the old names. */
    sh("cp new.pem live.pem.tmp && cp new.key live.key.tmp && mv live.key.tmp live.key && "
       "mv live.pem.tmp live.pem");
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    bool renewed = false;
    uint64_t deadline = now_ms() + 10000;
    while (!renewed && now_ms() < deadline) {
        tls_client t;
        assert_true(tls_open(&t, d.port, g_ca));
        peer_cn(&t, cn, sizeof(cn));
        renewed = strcmp(cn, "af-new") == 0;
        if (renewed) {
            X509 *x = SSL_get1_peer_certificate(t.ssl);
            assert_int_equal(ASN1_INTEGER_get(X509_get0_serialNumber(x)), 4098);
            X509_free(x);
        }
        tls_close(&t);
        if (!renewed)
            pause_ms(20);
    }
    assert_true(renewed);
    /* The connection from before the reload: same session, still served. */
    ans = tls_get(&old, "/api/v1/gpus");
    assert_int_equal(strncmp(ans, "HTTP/1.1 200", 12), 0);
    free(ans);
    tls_close(&old);
    /* The metrics listener got the new certificate too. */
    tls_client m;
    assert_true(tls_open(&m, d.mport, g_ca));
    peer_cn(&m, cn, sizeof(cn));
    assert_string_equal(cn, "af-new");
    tls_close(&m);

    sh("echo 'not a certificate' > live.pem");
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    char want[600];
    snprintf(want, sizeof(want),
             "TLS reload failed, keeping the current certificates: cannot load the TLS "
             "certificate chain from %s/live.pem",
             g_tmp);
    deadline = now_ms() + 10000;
    while (!logged(&d, want) && now_ms() < deadline)
        pause_ms(20);
    assert_true(logged(&d, want));
    tls_client t;
    assert_true(tls_open(&t, d.port, g_ca));
    peer_cn(&t, cn, sizeof(cn));
    assert_string_equal(cn, "af-new");
    tls_close(&t);
    assert_int_equal(daemon_stop(&d), 0);
}

/* Unusable TLS files stop the daemon before it listens, with a message naming the file. */
static void test_bad_files_exit(void **state)
{
    (void)state;
    static const struct {
        const char *cert, *key, *ca, *says;
    } cases[] = {
        {"missing.pem", "old.key", NULL, "missing.pem"},
        {"old.key", "old.key", NULL, "old.key"}, /* a key where the certificate belongs */
        {"old.pem", "new.key", NULL, "new.key: key values mismatch"},
        {"old.pem", "old.key", "missing-ca.pem", "missing-ca.pem"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cfg[2048], path[512];
        snprintf(cfg, sizeof(cfg),
                 "server:\n  tls:\n    cert_file: %s/%s\n    key_file: %s/%s\n%s%s%s%s", g_tmp,
                 cases[i].cert, g_tmp, cases[i].key, cases[i].ca ? "    client_ca_file: " : "",
                 cases[i].ca ? g_tmp : "", cases[i].ca ? "/" : "", cases[i].ca ? cases[i].ca : "");
        snprintf(path, sizeof(path), "%s/bad-%zu.yaml", g_tmp, i);
        write_file(path, cfg);
        const char *args[] = {
            g_bin, "serve",         "--config",  path, "--port", "0", "--metrics-port",
            "0",   "--gpu-backend", "simulated", NULL};
        char *out;
        int rc = run_cmd(args, NULL, &out);
        if (rc == 0 || !strstr(out, cases[i].says))
            fail_msg("case %zu: exit %d, output: %.500s", i, rc, out);
    }
}

/* A non-loopback bind without TLS starts, with a loud warning; SIGHUP there reloads the
 * configuration file and leaves the daemon running (it used to kill it). */
static void test_plain_non_loopback_warns(void **state)
{
    (void)state;
    daemon_t d;
    const char *extra[] = {"--bind", "0.0.0.0", NULL};
    const char *env[] = {"AGENTAFLOW_AUTH_TOKEN=tls-it-token", NULL};
    daemon_start(&d, "server:\n  load_generator: false\n", extra, env);
    assert_true(logged(&d, "WITHOUT TLS"));
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    uint64_t deadline = now_ms() + 10000;
    while (!logged(&d, "SIGHUP: configuration reloaded") && now_ms() < deadline)
        pause_ms(20);
    assert_true(logged(&d, "SIGHUP: configuration reloaded"));
    assert_int_equal(daemon_stop(&d), 0);
}

int main(int argc, char **argv)
{
    int rc = harness_init(argc, argv, "test_tls");
    if (rc)
        return rc;
    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("test_tls: the openssl command is missing (Debian package openssl); skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_api_metrics_and_span),
        cmocka_unit_test(test_tls_backpressure_pipelined),
        cmocka_unit_test(test_wrong_ca_fails),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_wss_upgrade),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_bad_files_exit),
        cmocka_unit_test(test_plain_non_loopback_warns),
    };
    rc = cmocka_run_group_tests_name("tls", tests, make_all_certs, NULL);
    harness_fini();
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", g_tmp);
    if (rc == 0 && system(rm) != 0)
        return 1;
    return rc;
}
