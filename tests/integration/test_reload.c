/*
 * integration.reload: SIGHUP applies a rewritten configuration to the running daemon
 * (sampling ratio, the OTLP exporter's endpoint, a components.* toggle, the log format) and
 * reports keys that need a restart; a broken file afterwards keeps the running configuration
 * and logs the error at its file:line:col. Spans go to loopback receivers as OTLP/JSON, so
 * a test finds a trace by its hex id in the request bodies.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "http_receiver.h"

/* The daemon's config file: harness.c names it after the port file (cfg-N.yaml). */
static void config_path(const daemon_t *d, char *out, size_t cap)
{
    const char *n = strrchr(d->portfile, '-');
    assert_non_null(n);
    snprintf(out, cap, "%s/cfg-%s.yaml", g_tmp, n + 1);
}

static void config_text(char *out, size_t cap, const char *ratio, int port, bool infer_spans,
                        const char *extra)
{
    snprintf(out, cap,
             "service_name: agentaflow-reload-it\n"
             "tracing:\n"
             "  sampling_ratio: %s\n"
             "  exporters:\n"
             "    otlp_http:\n"
             "      enabled: true\n"
             "      endpoint: http://127.0.0.1:%d/v1/traces\n"
             "      protocol: http/json\n"
             "components:\n"
             "  model_serving:\n"
             "    trace_inference_requests: %s\n"
             "performance:\n"
             "  schedule_delay: 50ms\n"
             "%s",
             ratio, port, infer_spans ? "true" : "false", extra);
}

/* Whether any request the receiver got so far has `text` in its body. */
static bool received(af_test_http_receiver *r, const char *text)
{
    size_t n = af_test_http_receiver_requests(r);
    for (size_t i = 0; i < n; i++) {
        const af_test_http_request *q = af_test_http_receiver_request(r, i);
        if (q && q->body && memmem(q->body, q->body_len, text, strlen(text)))
            return true;
    }
    return false;
}

static bool wait_received(af_test_http_receiver *r, const char *text, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (!received(r, text) && now_ms() < deadline)
        pause_ms(20);
    return received(r, text);
}

static bool logged(const daemon_t *d, const char *text)
{
    FILE *f = fopen(d->logfile, "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

static bool wait_logged(const daemon_t *d, const char *text, int ms)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    while (!logged(d, text) && now_ms() < deadline)
        pause_ms(20);
    return logged(d, text);
}

/* An inference request continuing a sampled remote trace `tid` (32 hex digits); returns
 * the status. */
static long infer_in_trace(int port, const char *tid)
{
    char tp[128];
    snprintf(tp, sizeof tp, "traceparent: 00-%s-00f067aa0ba902b7-01", tid);
    const char *h[] = {tp, "Content-Type: application/json", NULL};
    resp r = http(port, "POST", "/api/v1/inference",
                  "{\"model_id\":\"model-bert\",\"input\":\"hello\"}", h);
    long st = r.status;
    free(r.body);
    return st;
}

/* Whether the traceresponse of a GET without a traceparent says sampled (flag bit 0; bit 1
 * is W3C's "random"). */
static bool root_sampled(int port)
{
    resp r = http(port, "GET", "/api/v1/gpus", NULL, NULL);
    assert_int_equal(r.status, 200);
    char tr[128];
    assert_non_null(header(&r, "traceresponse", tr, sizeof tr));
    size_t len = strlen(tr);
    assert_true(len >= 2);
    unsigned long flags = strtoul(tr + len - 2, NULL, 16);
    free(r.body);
    return flags & 1;
}

static void test_sighup_applies_and_keeps(void **state)
{
    (void)state;
    af_test_http_receiver *a = NULL, *b = NULL;
    assert_int_equal(af_test_http_receiver_start(NULL, &a), 0);
    assert_int_equal(af_test_http_receiver_start(NULL, &b), 0);
    char cfg[2048];
    config_text(cfg, sizeof cfg, "1.0", af_test_http_receiver_port(a), true, "");
    const char *extra[] = {"--no-load-generator", NULL};
    daemon_t d;
    daemon_start(&d, cfg, extra, NULL);
    char path[600];
    config_path(&d, path, sizeof path);

    /* Before: root spans sampled, inference spans exported to receiver A. */
    assert_true(root_sampled(d.port));
    const char *t1 = "4bf92f3577b34da6a3ce929d0e0e4701";
    assert_int_equal(infer_in_trace(d.port, t1), 200);
    assert_true(wait_received(a, t1, 10000));
    assert_true(wait_received(a, "model_serving.inference", 10000));

    /* Ratio 0, the exporter pointed at B, inference spans off, JSON logs, and a key that
     * needs a restart. */
    config_text(cfg, sizeof cfg, "0.0", af_test_http_receiver_port(b), false,
                "server:\n  log_format: json\n  title: Renamed\n  log_levels:\n    http: debug\n");
    write_file(path, cfg);
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    assert_true(wait_logged(&d, "\"message\":\"SIGHUP: configuration reloaded from", 10000));
    assert_true(logged(&d, "server.title changed; it needs a restart"));

    /* The toggled component's spans stop; the API's server span (sampled by its remote
     * parent) now reaches B, and nothing more reaches A. */
    size_t a_before = af_test_http_receiver_requests(a);
    const char *t2 = "4bf92f3577b34da6a3ce929d0e0e4702";
    assert_int_equal(infer_in_trace(d.port, t2), 200);
    /* One queue exports in order: the inference span would end before t2's response, so
     * once a later request's spans arrived, it would have too. (t2's server span may end
     * just after its response, so it is waited for on its own.) */
    const char *t2b = "4bf92f3577b34da6a3ce929d0e0e47b2";
    assert_int_equal(infer_in_trace(d.port, t2b), 200);
    assert_true(wait_received(b, t2b, 10000));
    assert_true(wait_received(b, t2, 10000));
    assert_false(received(b, "model_serving.inference"));
    assert_int_equal(af_test_http_receiver_requests(a), a_before);
    /* A new root trace is no longer sampled. */
    assert_false(root_sampled(d.port));

    /* A broken file: the error names file:line:col and the running configuration stays. */
    write_file(path, "tracing:\n  sampling_ratio: high\n");
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    char want[700];
    snprintf(want, sizeof want, "%s:2:19: tracing.sampling_ratio", path);
    assert_true(wait_logged(&d, want, 10000));
    assert_true(wait_logged(&d, "has errors; keeping the running configuration", 10000));
    const char *t3 = "4bf92f3577b34da6a3ce929d0e0e4703";
    assert_int_equal(infer_in_trace(d.port, t3), 200);
    assert_true(wait_received(b, t3, 10000));
    assert_false(root_sampled(d.port));

    assert_int_equal(daemon_stop(&d), 0);
    af_test_http_receiver_stop(a);
    af_test_http_receiver_stop(b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_reload /path/to/agentaflow\n");
        return 2;
    }
    g_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/af-reload-it-XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sighup_applies_and_keeps),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
