/*
 * test_server_metrics.c - the daemon's Prometheus exposition (af__metrics_render) in both
 * formats, fed through the real recorders (af__metrics_http, _inference, _workload,
 * _schedule) on a server object that has no components attached, and the histogram
 * primitive (af__hist_*) underneath.
 *
 * The exposition is parsed back here with a small parser that follows the text format's
 * escaping rules, so the tests check what a scraper would read rather than substrings.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cost.h"
#include "agentaflow/trace_sdk.h"
#include "server/server_int.h"

/* A label value that needs every escape the text format has. */
static const char EVIL[] = "m\\x\"y\nz";

/* ---------------------------------------------------------------------------------------- */
/* Fixture: a bare server object with recorded observations.                                 */

typedef struct fixture {
    af_server *s;
    af_span_context sampled, unsampled;
    uint64_t t0_ns;
} fixture;

static void make_ctx(af_span_context *sc, uint8_t seed, bool sampled)
{
    af_span_context_init(sc);
    for (int i = 0; i < 16; i++)
        sc->trace_id[i] = (uint8_t)(seed + i);
    for (int i = 0; i < 8; i++)
        sc->span_id[i] = (uint8_t)(0xa0 + seed + i);
    sc->trace_flags = sampled ? AF_TRACE_FLAG_SAMPLED : 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->s = calloc(1, sizeof(*f->s));
    assert_non_null(f->s);
    assert_int_equal(pthread_mutex_init(&f->s->met_mu, NULL), 0);
    af__metrics_init(f->s);
    assert_non_null(f->s->http_hist);
    f->s->started_mono_ns = af_monotonic_ns();
    /* An empty scheduler: the workload and scheduling families live in its section. */
    af_gpu_scheduler_opts so;
    af_gpu_scheduler_opts_init(&so);
    assert_int_equal(af_gpu_scheduler_new(&so, &f->s->o.scheduler), 0);
    make_ctx(&f->sampled, 0x10, true);
    make_ctx(&f->unsampled, 0x40, false);
    f->t0_ns = af_now_ns();

    af_server *s = f->s;
    /* Route 0 (/health): 1 ms, 3 ms (sampled), 40 s (past the last bound: +Inf), one 5xx. */
    af__metrics_http(s, 0, 200, 0.001, NULL);
    af__metrics_http(s, 0, 200, 0.003, &f->sampled);
    af__metrics_http(s, 0, 503, 40.0, &f->unsampled);
    /* Unmatched paths share one series. */
    af__metrics_http(s, -1, 404, 0.0005, NULL);
    af__metrics_http(s, 100000, 404, 0.0005, NULL);

    /* A model whose id needs escaping, and a plain one. */
    af_inference_response r;
    memset(&r, 0, sizeof(r));
    r.latency_ns = 20000000; /* 0.02 s */
    r.batch_size = 4;
    r.prompt_tokens = 10;
    r.completion_tokens = 5;
    af__metrics_inference(s, EVIL, 0, &r, &f->sampled);
    r.cache_hit = true;
    r.batch_size = 0;
    af__metrics_inference(s, EVIL, 0, &r, NULL);
    af__metrics_inference(s, EVIL, -EIO, &r, NULL);
    memset(&r, 0, sizeof(r));
    r.latency_ns = 100000000;
    r.batch_size = 1;
    af__metrics_inference(s, "plain", 0, &r, &f->unsampled);

    /* Workloads at two priorities, recorded out of order. */
    af_workload_info w;
    memset(&w, 0, sizeof(w));
    w.queue_wait_ms = 250;
    af__metrics_workload(s, 9, AF_WORKLOAD_PENDING, &w, NULL);
    af__metrics_workload(s, 1, AF_WORKLOAD_PENDING, &w, NULL);
    af__metrics_workload(s, 1, AF_WORKLOAD_RUNNING, &w, &f->sampled);
    w.started_ns = 1000000000ull;
    w.completed_ns = 3000000000ull; /* 2 s */
    af__metrics_workload(s, 1, AF_WORKLOAD_COMPLETED, &w, NULL);
    af__metrics_workload(s, 9, AF_WORKLOAD_CANCELLED, &w, NULL);

    af__metrics_schedule(s, AF_GPU_BEST_FIT, 0.002, 3, 1, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    af__metrics_free(f->s);
    af_gpu_scheduler_free(f->s->o.scheduler);
    pthread_mutex_destroy(&f->s->met_mu);
    free(f->s);
    free(f);
    return 0;
}

static char *render(fixture *f, bool om)
{
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__metrics_render(f->s, om, &b), 0);
    af__buf_terminate(&b);
    assert_false(b.failed);
    return (char *)b.data;
}

/* ---------------------------------------------------------------------------------------- */
/* A parser for the exposition.                                                              */

#define MAX_LABELS 8

typedef struct sample_line {
    char name[128];
    size_t n_labels;
    char lname[MAX_LABELS][32];
    char lvalue[MAX_LABELS][128]; /* unescaped */
    char labels_raw[512];         /* as written, without le */
    double value;
    const char *rest; /* after the value: exemplar or timestamp, "" when none */
} sample_line;

/* Parses "name{a="v",...} value[ rest]" (one line, NUL-terminated); false when malformed. */
static bool parse_sample(const char *line, sample_line *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = strcspn(line, "{ ");
    if (n == 0 || n >= sizeof(out->name))
        return false;
    memcpy(out->name, line, n);
    const char *p = line + n;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (out->n_labels == MAX_LABELS)
                return false;
            size_t ln = strcspn(p, "=");
            if (ln == 0 || ln >= 32 || p[ln] != '=' || p[ln + 1] != '"')
                return false;
            memcpy(out->lname[out->n_labels], p, ln);
            p += ln + 2;
            size_t vi = 0;
            for (; *p != '"'; p++) {
                char c = *p;
                if (c == '\0' || c == '\n')
                    return false;
                if (c == '\\') {
                    p++;
                    if (*p == 'n')
                        c = '\n';
                    else if (*p == '\\' || *p == '"')
                        c = *p;
                    else
                        return false; /* no other escape exists */
                }
                if (vi + 1 >= 128)
                    return false;
                out->lvalue[out->n_labels][vi++] = c;
            }
            p++; /* closing quote */
            if (strcmp(out->lname[out->n_labels], "le") != 0) {
                size_t used = strlen(out->labels_raw);
                snprintf(out->labels_raw + used, sizeof(out->labels_raw) - used, "%s=%s;",
                         out->lname[out->n_labels], out->lvalue[out->n_labels]);
            }
            out->n_labels++;
            if (*p == ',')
                p++;
            else if (*p != '}')
                return false;
        }
        p++;
    }
    if (*p != ' ')
        return false;
    p++;
    char *end;
    if (strncmp(p, "+Inf", 4) == 0) {
        out->value = INFINITY;
        end = (char *)p + 4;
    } else {
        out->value = strtod(p, &end);
        if (end == p)
            return false;
    }
    if (*end != '\0' && *end != ' ')
        return false;
    out->rest = *end ? end + 1 : end;
    return true;
}

static const char *label(const sample_line *s, const char *name)
{
    for (size_t i = 0; i < s->n_labels; i++)
        if (strcmp(s->lname[i], name) == 0)
            return s->lvalue[i];
    return NULL;
}

/* Splits text into lines in place; returns the count. */
static size_t split_lines(char *text, char **lines, size_t cap)
{
    size_t n = 0;
    for (char *p = text; *p && n < cap;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line, the last included, ends with \n */
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

static bool has_suffix(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

#define MAX_FAMILIES 128
#define MAX_LINES 4096

typedef struct family {
    char name[128];
    char type[16];
} family;

/* Walks the exposition and checks its grammar: HELP then TYPE once per family, before the
 * family's samples, every sample belonging to the family above it, counters sampled as
 * <family>_total, OpenMetrics ending with one "# EOF". Returns the families in order. */
static size_t check_grammar(char *text, bool om, family *fams)
{
    static char *lines[MAX_LINES];
    size_t n = split_lines(text, lines, MAX_LINES);
    assert_true(n > 10 && n < MAX_LINES);
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        if (om && strcmp(l, "# EOF") == 0) {
            assert_int_equal(i, n - 1); /* the last line, and only once */
            continue;
        }
        if (strncmp(l, "# HELP ", 7) == 0) {
            char name[128];
            assert_int_equal(sscanf(l + 7, "%127s", name), 1);
            assert_true(i + 1 < n);
            char tname[128], type[16];
            assert_int_equal(sscanf(lines[i + 1], "# TYPE %127s %15s", tname, type), 2);
            assert_string_equal(tname, name);
            for (size_t k = 0; k < nf; k++)
                if (strcmp(fams[k].name, name) == 0)
                    fail_msg("family %s appears twice", name);
            assert_true(nf < MAX_FAMILIES);
            snprintf(fams[nf].name, sizeof(fams[nf].name), "%s", name);
            snprintf(fams[nf].type, sizeof(fams[nf].type), "%s", type);
            nf++;
            if (strcmp(type, "counter") == 0)
                assert_int_equal(has_suffix(name, "_total"), !om);
            i++;
            continue;
        }
        assert_true(l[0] != '#'); /* no stray TYPE, no comments */
        assert_true(nf > 0);
        sample_line s;
        if (!parse_sample(l, &s))
            fail_msg("malformed sample line: %s", l);
        const family *f = &fams[nf - 1];
        char want[160];
        if (strcmp(f->type, "histogram") == 0) {
            bool ok = false;
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};
            for (int k = 0; k < 3; k++) {
                snprintf(want, sizeof(want), "%.127s%s", f->name, sfx[k]);
                ok |= strcmp(s.name, want) == 0;
            }
            if (!ok)
                fail_msg("%s under family %s", s.name, f->name);
        } else {
            snprintf(want, sizeof(want), "%.127s%s", f->name,
                     om && strcmp(f->type, "counter") == 0 ? "_total" : "");
            assert_string_equal(s.name, want);
        }
        assert_true(strncmp(s.name, "agentaflow_", 11) == 0);
        /* Exemplars only in OpenMetrics, only on buckets. */
        if (*s.rest) {
            assert_true(om);
            assert_true(has_suffix(s.name, "_bucket"));
        }
    }
    if (om)
        assert_string_equal(lines[n - 1], "# EOF");
    return nf;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests.                                                                                    */

static void test_text_grammar(void **state)
{
    fixture *f = *state;
    static family fams[MAX_FAMILIES];
    char *t = render(f, false);
    assert_null(strstr(t, "# EOF"));
    size_t nf = check_grammar(t, false, fams);
    /* The families the recorders fed are there, with their types. */
    static const struct {
        const char *name, *type;
    } want[] = {
        {"agentaflow_http_request_duration_seconds", "histogram"},
        {"agentaflow_http_server_errors_total", "counter"},
        {"agentaflow_inference_requests_total", "counter"},
        {"agentaflow_inference_latency_seconds", "histogram"},
        {"agentaflow_inference_batch_size", "histogram"},
        {"agentaflow_tokens_processed_total", "counter"},
        {"agentaflow_cache_hit_rate", "gauge"},
        {"agentaflow_system_uptime_seconds", "gauge"},
        {"agentaflow_tracing_spans_started_total", "counter"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        bool found = false;
        for (size_t k = 0; k < nf && !found; k++)
            if (strcmp(fams[k].name, want[i].name) == 0) {
                assert_string_equal(fams[k].type, want[i].type);
                found = true;
            }
        if (!found)
            fail_msg("family %s missing", want[i].name);
    }
    free(t);
}

static void test_label_value_escaping(void **state)
{
    fixture *f = *state;
    char *t = render(f, false);
    /* As written: backslash, quote and newline escaped, in that order of appearance. */
    assert_non_null(strstr(t, "agentaflow_inference_requests_total{model_id=\"m\\\\x\\\"y\\nz\","
                              "status=\"success\"} 2\n"));
    assert_non_null(strstr(t, "agentaflow_inference_requests_total{model_id=\"m\\\\x\\\"y\\nz\","
                              "status=\"error\"} 1\n"));
    /* As read back: the original id, through every family that carries it. */
    static char *lines[MAX_LINES];
    size_t n = split_lines(t, lines, MAX_LINES);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        sample_line s;
        if (lines[i][0] == '#' || !parse_sample(lines[i], &s))
            continue;
        const char *m = label(&s, "model_id");
        if (m && strcmp(m, "plain") != 0) {
            assert_string_equal(m, EVIL);
            seen++;
        }
    }
    /* requests x2, latency (14 buckets + Inf + sum + count), batch (11 + Inf + 2), cache hits,
     * misses, hit rate, tokens */
    assert_int_equal(seen, 2 + 17 + 14 + 4);
    free(t);
}

static void test_values(void **state)
{
    fixture *f = *state;
    char *t = render(f, false);
    /* Counters and gauges as recorded. */
    assert_non_null(strstr(t, "\nagentaflow_cache_hits_total{model_id=\"plain\"} 0\n"));
    assert_non_null(strstr(t, "\nagentaflow_tokens_processed_total{model_id=\"plain\","
                              "operation=\"inference\"} 0\n"));
    assert_non_null(strstr(t, "\nagentaflow_cache_hit_rate{model_id=\"m\\\\x\\\"y\\nz\"} 0.5\n"));
    assert_non_null(strstr(t, "\nagentaflow_http_server_errors_total{route=\"/health\","
                              "method=\"GET\"} 1\n"));
    assert_non_null(strstr(t, "\nagentaflow_http_server_errors_total{route=\"unmatched\","
                              "method=\"any\"} 0\n"));
    /* Priorities come out ascending whatever the recording order. */
    const char *p1 =
        strstr(t, "agentaflow_workloads_total{status=\"submitted\",priority=\"1\"} 1\n");
    const char *p9 =
        strstr(t, "agentaflow_workloads_total{status=\"submitted\",priority=\"9\"} 1\n");
    assert_non_null(p1);
    assert_non_null(p9);
    assert_true(p1 < p9);
    assert_non_null(
        strstr(t, "agentaflow_workloads_total{status=\"cancelled\",priority=\"9\"} 1\n"));
    assert_non_null(strstr(t, "\nagentaflow_scheduling_decisions_total{strategy=\"best_fit\","
                              "outcome=\"placed\"} 3\n"));
    /* _sum keeps full precision: 0.001 + 0.003 + 40 read back exactly. */
    const char *sum = strstr(t, "\nagentaflow_http_request_duration_seconds_sum{route=\"/health\","
                                "method=\"GET\"} ");
    assert_non_null(sum);
    sum = strchr(sum + 1, '}') + 2;
    assert_true(strtod(sum, NULL) == 0.001 + 0.003 + 40.0);
    free(t);
}

/* Every histogram series: le ascending, counts cumulative, +Inf last and equal to _count,
 * _sum present. */
static void test_histograms(void **state)
{
    fixture *f = *state;
    for (int om = 0; om < 2; om++) {
        char *t = render(f, om);
        char *whole = strdup(t); /* split_lines cuts t into lines */
        assert_non_null(whole);
        static char *lines[MAX_LINES];
        size_t n = split_lines(t, lines, MAX_LINES);
        size_t series = 0;
        for (size_t i = 0; i < n; i++) {
            sample_line s;
            if (lines[i][0] == '#' || !parse_sample(lines[i], &s) || !has_suffix(s.name, "_bucket"))
                continue;
            /* The first bucket of a series: walk to its end. */
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(strlen(s.name) - 7), s.name);
            char key[512];
            snprintf(key, sizeof(key), "%s", s.labels_raw);
            double prev_le = -INFINITY, prev_count = 0;
            bool inf = false;
            size_t j = i;
            for (; j < n; j++) {
                sample_line b;
                assert_true(parse_sample(lines[j], &b));
                if (!has_suffix(b.name, "_bucket"))
                    break;
                assert_string_equal(b.labels_raw, key);
                const char *le = label(&b, "le");
                assert_non_null(le);
                assert_false(inf); /* nothing after +Inf */
                double lev = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
                inf = isinf(lev);
                assert_true(lev > prev_le);
                assert_true(b.value >= prev_count);
                assert_true(b.value == floor(b.value));
                prev_le = lev;
                prev_count = b.value;
            }
            assert_true(inf);
            sample_line sm, ct;
            assert_true(j + 1 < n);
            assert_true(parse_sample(lines[j], &sm));
            assert_true(parse_sample(lines[j + 1], &ct));
            char want[160];
            snprintf(want, sizeof(want), "%s_sum", base);
            assert_string_equal(sm.name, want);
            assert_string_equal(sm.labels_raw, key);
            snprintf(want, sizeof(want), "%s_count", base);
            assert_string_equal(ct.name, want);
            assert_string_equal(ct.labels_raw, key);
            assert_true(ct.value == prev_count);
            series++;
            i = j + 1;
        }
        /* http (route 0, unmatched), latency x2, batch x2, queue time x2, execution,
         * scheduling */
        assert_int_equal(series, 2 + 2 + 2 + 2 + 1 + 1);
        /* Known bucket placement: 40 s lands only in +Inf. */
        assert_non_null(strstr(whole,
                               "agentaflow_http_request_duration_seconds_bucket{route=\"/health\","
                               "method=\"GET\",le=\"30\"} 2"));
        assert_non_null(strstr(whole,
                               "agentaflow_http_request_duration_seconds_bucket{route=\"/health\","
                               "method=\"GET\",le=\"+Inf\"} 3"));
        assert_non_null(strstr(whole,
                               "agentaflow_http_request_duration_seconds_count{route=\"/health\","
                               "method=\"GET\"} 3\n"));
        /* Both unmatched observations (route -1 and out of range) share one series. */
        assert_non_null(strstr(whole, "agentaflow_http_request_duration_seconds_count{route="
                                      "\"unmatched\",method=\"any\"} 2\n"));
        free(whole);
        free(t);
    }
}

/* Families, and series inside them, come out in the same order scrape after scrape and in
 * both formats. */
static void test_stable_order(void **state)
{
    fixture *f = *state;
    static family a[MAX_FAMILIES], b[MAX_FAMILIES], c[MAX_FAMILIES];
    char *t1 = render(f, false);
    char *t2 = render(f, false);
    char *o1 = render(f, true);
    size_t na = check_grammar(t1, false, a);
    size_t nb = check_grammar(t2, false, b);
    size_t nc = check_grammar(o1, true, c);
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_string_equal(a[i].type, c[i].type);
        char want[160];
        snprintf(want, sizeof(want), "%.127s%s", c[i].name,
                 strcmp(c[i].type, "counter") == 0 ? "_total" : "");
        assert_string_equal(a[i].name, want);
    }
    free(t1);
    free(t2);
    free(o1);
    /* Apart from the uptime, two scrapes of the same state are byte-identical. */
    t1 = render(f, true);
    t2 = render(f, true);
    char *u1 = strstr(t1, "\nagentaflow_system_uptime_seconds ");
    char *u2 = strstr(t2, "\nagentaflow_system_uptime_seconds ");
    assert_non_null(u1);
    assert_non_null(u2);
    char *e1 = strchr(u1 + 1, '\n'), *e2 = strchr(u2 + 1, '\n');
    assert_int_equal(u1 - t1, u2 - t2);
    assert_memory_equal(t1, t2, (size_t)(u1 - t1));
    assert_string_equal(e1, e2);
    free(t1);
    free(t2);
}

static void test_openmetrics_exemplars(void **state)
{
    fixture *f = *state;
    char *t = render(f, true);
    char *whole = strdup(t); /* split_lines cuts t into lines */
    assert_non_null(whole);
    uint64_t now = af_now_ns();
    static char *lines[MAX_LINES];
    size_t n = split_lines(t, lines, MAX_LINES);
    size_t exemplars = 0;
    char tid[33], sid[17];
    af_trace_id_to_hex(f->sampled.trace_id, tid);
    af_span_id_to_hex(f->sampled.span_id, sid);
    for (size_t i = 0; i < n; i++) {
        const char *ex = strstr(lines[i], " # {");
        if (!ex)
            continue;
        sample_line s;
        assert_true(parse_sample(lines[i], &s));
        assert_true(has_suffix(s.name, "_bucket"));
        /* # {trace_id="<32 hex>",span_id="<16 hex>"} <value> <seconds>.<millis> */
        char t_id[64], s_id[64];
        double v;
        unsigned long long secs;
        unsigned ms;
        int used = 0;
        assert_int_equal(sscanf(s.rest,
                                "# {trace_id=\"%32[0-9a-f]\",span_id=\"%16[0-9a-f]\"} "
                                "%lf %llu.%3u%n",
                                t_id, s_id, &v, &secs, &ms, &used),
                         5);
        assert_int_equal((size_t)used, strlen(s.rest));
        /* Only the sampled context is ever an exemplar. */
        assert_string_equal(t_id, tid);
        assert_string_equal(s_id, sid);
        assert_true(secs >= f->t0_ns / 1000000000ull && secs <= now / 1000000000ull);
        /* The exemplar's value falls in its bucket. */
        const char *le = label(&s, "le");
        assert_true(strcmp(le, "+Inf") == 0 || v <= strtod(le, NULL));
        exemplars++;
    }
    /* http 3 ms, inference latency 0.02 s and batch 4, queue time 0.25 s. */
    assert_int_equal(exemplars, 4);
    assert_non_null(strstr(whole,
                           "agentaflow_http_request_duration_seconds_bucket{route=\"/health\","
                           "method=\"GET\",le=\"0.005\"} 2 # {trace_id=\""));
    assert_non_null(strstr(whole,
                           "agentaflow_inference_batch_size_bucket{model_id=\"m\\\\x\\\"y\\nz\","
                           "le=\"4\"} 1 # {"));
    /* The counter family is named without _total, its samples with it. */
    assert_non_null(strstr(whole, "# TYPE agentaflow_inference_requests counter\n"));
    assert_null(strstr(whole, "# TYPE agentaflow_inference_requests_total"));
    assert_non_null(strstr(whole, "\nagentaflow_inference_requests_total{model_id=\"plain\","
                                  "status=\"success\"} 1\n"));
    free(whole);
    free(t);

    /* The text format never carries exemplars. */
    t = render(f, false);
    assert_null(strstr(t, " # {"));
    assert_non_null(strstr(t, "# TYPE agentaflow_inference_requests_total counter\n"));
    free(t);
}

/* Occurrences of needle in text. */
static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Label values past server.max_label_values fold into "other", counted per family; the
 * exposition stays valid and its size stops growing with the number of names clients send. */
static void test_label_folding(void **state)
{
    fixture *f = *state;
    af_server *s = f->s;
    s->o.max_label_values = 5;
    af_cost_tracker_opts co;
    af_cost_tracker_opts_init(&co);
    co.max_names = 5;
    assert_int_equal(af_cost_tracker_new(&co, &s->o.costs), 0);
    for (int i = 0; i < 200; i++) {
        char op[32], model[32];
        snprintf(op, sizeof(op), "op-%d", i);
        snprintf(model, sizeof(model), "model-%d", i);
        af_cost_entry e = {.operation = op, .model_id = model, .cost = 1};
        assert_int_equal(af_cost_record(s->o.costs, NULL, &e), 0);
        af_inference_response r;
        memset(&r, 0, sizeof(r));
        af__metrics_inference(s, model, 0, &r, NULL);
    }
    char *t = render(f, false);
    static family fams[MAX_FAMILIES];
    char *copy = strdup(t); /* the grammar check splits its text in place */
    assert_non_null(copy);
    check_grammar(copy, false, fams);
    free(copy);
    /* 5 names of their own plus "other", whatever else is in the fixture. */
    assert_int_equal(count_of(t, "\nagentaflow_cost_dollars_total{"), 6);
    assert_non_null(
        strstr(t, "\nagentaflow_cost_dollars_total{operation=\"other\",currency=\"USD\"} 195\n"));
    assert_int_equal(count_of(t, "\nagentaflow_cost_by_model_dollars_total{"), 6);
    assert_int_equal(count_of(t, "\nagentaflow_gpu_usage_seconds_total{"), 6);
    /* The fixture's two models came first: three more have rows (success and error). */
    assert_int_equal(count_of(t, "\nagentaflow_inference_requests_total{model_id=\"model-"), 6);
    assert_int_equal(count_of(t, "\nagentaflow_cache_hits_total{"), 6);
    assert_non_null(strstr(t, "\nagentaflow_inference_requests_total{model_id=\"other\","
                              "status=\"success\"} 197\n"));
    assert_non_null(strstr(t, "\nagentaflow_metric_label_values_folded_total{family="
                              "\"agentaflow_cost_dollars\"} 195\n"));
    assert_non_null(strstr(t, "\nagentaflow_metric_label_values_folded_total{family="
                              "\"agentaflow_inference_requests\"} 197\n"));
    size_t size = strlen(t);
    free(t);
    /* Ten times the names: not one byte more (the values are counts of the same width). */
    for (int i = 200; i < 2000; i++) {
        char op[32];
        snprintf(op, sizeof(op), "op-%d", i);
        af_cost_entry e = {.operation = op, .cost = 0};
        assert_int_equal(af_cost_record(s->o.costs, NULL, &e), 0);
    }
    t = render(f, false);
    assert_true(strlen(t) <= size + 64);
    free(t);
    af_cost_summary cs;
    assert_int_equal(af_cost_summary_get(s->o.costs, NULL, 0, 0, &cs), 0);
    assert_int_equal(cs.n_by_operation, 6);
    af_cost_summary_clear(&cs);
    af_cost_tracker_free(s->o.costs);
    s->o.costs = NULL;
}

static void test_hist_primitive(void **state)
{
    (void)state;
    static const double bounds[] = {1, 2, 5};
    af__hist h;
    af__hist_init(&h, bounds, 3);
    af_span_context sc;
    make_ctx(&sc, 1, true);
    af__hist_observe(&h, 1.0, NULL); /* le is inclusive */
    af__hist_observe(&h, 1.5, &sc);
    af__hist_observe(&h, 9.0, NULL);
    af__hist_observe(&h, NAN, &sc); /* ignored */
    af__hist_observe(&h, INFINITY, &sc);
    assert_int_equal(h.counts[0], 1);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[2], 0);
    assert_int_equal(h.counts[3], 1);
    assert_int_equal(h.count, 3);
    assert_true(h.sum == 11.5);
    assert_false(h.ex[0].set);
    assert_true(h.ex[1].set);
    assert_true(h.ex[1].value == 1.5);
    assert_int_equal(strlen(h.ex[1].trace_id), 32);
    assert_int_equal(strlen(h.ex[1].span_id), 16);
    /* Bounds beyond the fixed capacity are clamped, not overrun. */
    double many[AF__HIST_MAX_BOUNDS + 4];
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
        many[i] = (double)(i + 1);
    af__hist_init(&h, many, sizeof(many) / sizeof(many[0]));
    assert_int_equal(h.n_bounds, AF__HIST_MAX_BOUNDS);
    af__hist_observe(&h, 1e9, NULL);
    assert_int_equal(h.counts[AF__HIST_MAX_BOUNDS], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_grammar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_value_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histograms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stable_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openmetrics_exemplars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_folding, setup, teardown),
        cmocka_unit_test(test_hist_primitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
