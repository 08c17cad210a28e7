/*
 * The stdout exporter: each span as one OTLP/JSON-shaped object (the spec's stdout format is
 * unspecified; OTLP/JSON field names make the output machine-readable), one per line or
 * indented with pretty_print. For debugging: it writes on the exporting thread.
 *
 * Two locks: write_mu serializes exports (the encode buffer and the write, which can block
 * on a full pipe for as long as the reader likes); mu guards the counters and is held only
 * for a few stores. The fork hook takes mu, and write_mu only if it is free: fork must not
 * wait for a stuck reader. When a parent thread was writing, the child starts a new buffer
 * (the old one may be half-grown; it stays allocated, as the parent's memory does) and glibc
 * has already re-created the stream's own lock. Lock order: write_mu, then mu.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/export.h"
#include "export/encode.h"
#include "util/str.h"

typedef struct stdout_exp {
    FILE *stream;
    bool pretty;
    pthread_mutex_t write_mu;
    pthread_mutex_t mu;
    bool write_held_for_fork; /* the fork hook took write_mu (the buffer is consistent) */
    af_buf buf;
    uint64_t exported;
    uint64_t failed;
    uint64_t last_success_ns;
    uint64_t last_failure_ns;
    char last_error[128];
} stdout_exp;

void af_stdout_exporter_opts_init(af_stdout_exporter_opts *o)
{
    o->stream = NULL;
    o->pretty_print = false;
}

static int stdout_export(void *self, const af_span_data *const *spans, size_t n, uint64_t dl)
{
    (void)dl;
    stdout_exp *e = self;
    pthread_mutex_lock(&e->write_mu);
    af__buf_reset(&e->buf);
    for (size_t i = 0; i < n; i++) {
        af__otlp_json_span(spans[i], &e->buf, e->pretty);
        af__buf_putc(&e->buf, '\n');
    }
    int rc = 0;
    if (e->buf.failed) {
        rc = -ENOMEM;
    } else if (fwrite(e->buf.data, 1, e->buf.len, e->stream) != e->buf.len ||
               fflush(e->stream) != 0) {
        rc = -EIO;
    }
    pthread_mutex_lock(&e->mu);
    if (rc == 0) {
        e->exported += n;
        e->last_success_ns = af_now_ns();
    } else {
        e->failed += n;
        e->last_failure_ns = af_now_ns();
        af__strlcpy(e->last_error, af_strerror(rc), sizeof(e->last_error));
    }
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_unlock(&e->write_mu);
    return rc;
}

static void stdout_health(void *self, af_exporter_health *out)
{
    stdout_exp *e = self;
    pthread_mutex_lock(&e->mu);
    af__strlcpy(out->endpoint, e->stream == stdout ? "stdout" : "stream", sizeof(out->endpoint));
    out->spans_exported = e->exported;
    out->spans_failed = e->failed;
    out->last_success_ns = e->last_success_ns;
    out->last_failure_ns = e->last_failure_ns;
    af__strlcpy(out->last_error, e->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&e->mu);
}

static void stdout_destroy(void *self)
{
    stdout_exp *e = self;
    af__buf_clear(&e->buf);
    pthread_mutex_destroy(&e->write_mu);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static void stdout_atfork(void *self, af_fork_phase phase)
{
    stdout_exp *e = self;
    if (phase == AF_FORK_PREPARE) {
        e->write_held_for_fork = pthread_mutex_trylock(&e->write_mu) == 0;
        pthread_mutex_lock(&e->mu);
    } else if (phase == AF_FORK_PARENT) {
        pthread_mutex_unlock(&e->mu);
        if (e->write_held_for_fork)
            pthread_mutex_unlock(&e->write_mu);
    } else {
        if (!e->write_held_for_fork) /* a parent thread was encoding or writing */
            af__buf_init(&e->buf);
        pthread_mutex_init(&e->write_mu, NULL); /* the holders do not exist here */
        pthread_mutex_init(&e->mu, NULL);
    }
}

static const af_exporter_ops stdout_ops = {
    .type = "stdout",
    .export_spans = stdout_export,
    .destroy = stdout_destroy,
    .health = stdout_health,
    .atfork = stdout_atfork,
};

int af_stdout_exporter_new(const af_stdout_exporter_opts *opts, af_exporter **out)
{
    *out = NULL;
    stdout_exp *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->stream = (opts && opts->stream) ? opts->stream : stdout;
    e->pretty = opts && opts->pretty_print;
    pthread_mutex_init(&e->write_mu, NULL);
    pthread_mutex_init(&e->mu, NULL);
    af__buf_init(&e->buf);
    return af_exporter_new(&stdout_ops, e, out);
}

int af_span_to_json(const af_span_data *span, bool pretty, char **out)
{
    af_buf b;
    af__buf_init(&b);
    af__otlp_json_span(span, &b, pretty);
    return af__buf_finish(&b, out);
}
