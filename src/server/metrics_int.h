/*
 * server/metrics_int.h - what the exposition files share: the writer (metrics_expo.c) and the
 * families (metrics_render_*.c) that af__metrics_render (metrics.c) calls in order.
 *
 * Threads: a render runs on the scraping loop's thread; each family takes the locks it
 * needs (met_mu for the server's own counters) and the writer touches only its buffer.
 */
#ifndef AF_SERVER_METRICS_INT_H
#define AF_SERVER_METRICS_INT_H

#include <stdbool.h>

#include "server/server_int.h"

/* Metric names begin with this. */
#define P "agentaflow_"

/* A NULL-terminated array of label name/value pairs. */
#define LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One scrape being written: its buffer (borrowed) and the format. */
typedef struct af__expo {
    af_buf *b;
    bool om;   /* OpenMetrics 1.0, else text format 0.0.4 */
    bool bare; /* names as given, without the agentaflow_ prefix (standard families) */
} af__expo;

/* HELP and TYPE of the family base (type "gauge", "counter" or "histogram"). */
void af__expo_family(af__expo *e, const char *base, const char *type, const char *help);
/* One sample of base+suffix; labels may be NULL. */
void af__expo_sample(af__expo *e, const char *base, const char *suffix, const char *const *labels,
                     double v);
void af__expo_gauge(af__expo *e, const char *base, const char *const *labels, double v);
/* Writes base_total. */
void af__expo_counter(af__expo *e, const char *base, const char *const *labels, double v);
/* Cumulative buckets (with exemplars in OpenMetrics), _sum and _count. */
void af__expo_histogram(af__expo *e, const char *base, const char *const *labels,
                        const af__hist *h);

/* The families, in scrape order. node is this host's name. */
void af__metrics_render_gpus(af_server *s, af__expo *e, const char *node);
void af__metrics_render_scheduler(af_server *s, af__expo *e, const char *node);
void af__metrics_render_serving(af_server *s, af__expo *e);
/* metrics_genai.c: the OpenTelemetry GenAI families under their semantic-convention names. */
void af__metrics_render_genai(af_server *s, af__expo *e);
void af__metrics_render_costs(af_server *s, af__expo *e);
void af__metrics_render_alerts(af_server *s, af__expo *e);
void af__metrics_render_system(af_server *s, af__expo *e);
void af__metrics_render_tracing(af_server *s, af__expo *e);
void af__metrics_render_cluster(af_server *s, af__expo *e);
void af__metrics_render_store(af_server *s, af__expo *e);
void af__metrics_render_folded(af_server *s, af__expo *e);

#endif
