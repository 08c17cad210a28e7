/*
 * The Prometheus / OpenMetrics writer: HELP and TYPE lines, quoted and escaped labels in a
 * fixed order, full-precision values, cumulative histogram buckets with exemplars
 * (OpenMetrics only). metrics.c states the rules; metrics_int.h declares these.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics_int.h"
#include "server/server_int.h"

static void put_value(af_buf *b, double v)
{
    if (isnan(v))
        af__buf_puts(b, "NaN");
    else if (isinf(v))
        af__buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9e15)
        af__buf_printf(b, "%.0f", v);
    else {
        /* Shortest of 15 or 17 significant digits that reads back exactly. */
        char t[40];
        snprintf(t, sizeof(t), "%.15g", v);
        if (strtod(t, NULL) != v)
            snprintf(t, sizeof(t), "%.17g", v);
        af__buf_puts(b, t);
    }
}

static void put_label_value(af_buf *b, const char *v)
{
    af__buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\')
            af__buf_puts(b, "\\\\");
        else if (*v == '"')
            af__buf_puts(b, "\\\"");
        else if (*v == '\n')
            af__buf_puts(b, "\\n");
        else
            af__buf_putc(b, *v);
    }
    af__buf_putc(b, '"');
}

void af__expo_family(af__expo *e, const char *base, const char *type, const char *help)
{
    bool counter = strcmp(type, "counter") == 0;
    const char *sfx = counter && !e->om ? "_total" : "";
    const char *pfx = e->bare ? "" : P;
    af__buf_printf(e->b, "# HELP %s%s%s ", pfx, base, sfx);
    /* HELP text escaping: backslash and newline. */
    for (const char *h = help; *h; h++) {
        if (*h == '\\')
            af__buf_puts(e->b, "\\\\");
        else if (*h == '\n')
            af__buf_puts(e->b, "\\n");
        else
            af__buf_putc(e->b, *h);
    }
    af__buf_printf(e->b, "\n# TYPE %s%s%s %s\n", pfx, base, sfx, type);
}

/* labels: NULL-terminated name/value pairs. */
static void put_labels(af_buf *b, const char *const *labels, const char *le)
{
    if ((!labels || !labels[0]) && !le)
        return;
    af__buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!first)
            af__buf_putc(b, ',');
        first = false;
        af__buf_printf(b, "%s=", labels[i]);
        put_label_value(b, labels[i + 1] ? labels[i + 1] : "");
    }
    if (le) {
        if (!first)
            af__buf_putc(b, ',');
        af__buf_printf(b, "le=\"%s\"", le);
    }
    af__buf_putc(b, '}');
}

void af__expo_sample(af__expo *e, const char *base, const char *suffix, const char *const *labels,
                     double v)
{
    af__buf_printf(e->b, "%s%s%s", e->bare ? "" : P, base, suffix);
    put_labels(e->b, labels, NULL);
    af__buf_putc(e->b, ' ');
    put_value(e->b, v);
    af__buf_putc(e->b, '\n');
}

void af__expo_gauge(af__expo *e, const char *base, const char *const *labels, double v)
{
    af__expo_sample(e, base, "", labels, v);
}

void af__expo_counter(af__expo *e, const char *base, const char *const *labels, double v)
{
    af__expo_sample(e, base, "_total", labels, v);
}

void af__expo_histogram(af__expo *e, const char *base, const char *const *labels, const af__hist *h)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            snprintf(le, sizeof(le), "%.15g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        af__buf_printf(e->b, "%s%s_bucket", e->bare ? "" : P, base);
        put_labels(e->b, labels, le);
        af__buf_printf(e->b, " %llu", (unsigned long long)cum);
        if (e->om && h->ex[i].set) {
            af__buf_printf(e->b, " # {trace_id=\"%s\",span_id=\"%s\"} ", h->ex[i].trace_id,
                           h->ex[i].span_id);
            put_value(e->b, h->ex[i].value);
            af__buf_printf(e->b, " %llu.%03llu",
                           (unsigned long long)(h->ex[i].time_ns / 1000000000ull),
                           (unsigned long long)(h->ex[i].time_ns / 1000000ull % 1000));
        }
        af__buf_putc(e->b, '\n');
    }
    af__expo_sample(e, base, "_sum", labels, h->sum);
    af__expo_sample(e, base, "_count", labels, (double)h->count);
}
