/*
 * agentaflow/cost.h - cost tracking: cost entries, GPU usage pricing, summaries, forecast.
 *
 * The original's MonitoringService cost half (docs/upstream-differences.md), fixed: caller
 * timestamps are honoured, summaries group by every operation and model (not only
 * "inference"/"training"), every GPU type it recognises is priced, volume discounts apply to
 * cumulative hours, and memory is bounded.
 *
 * Memory: entries younger than `retention_s` are kept one by one (at most `max_entries`);
 * older ones (or the oldest when the ring is full) are folded into hourly buckets keyed by
 * (hour, operation, model), which live `bucket_retention_h` hours (at most `max_buckets`).
 * A summary reads both, so totals stay exact at hour resolution after folding.
 *
 * Tracing: spans cost_tracking.record_cost and cost_tracking.get_cost_summary (docs/tracing.md,
 * cost operations). The tracer comes from opts.tracing (component
 * components.observability.trace_cost_calculations) or, when that is NULL, opts.tracer (a
 * plain tracer, e.g. a test's); both borrowed, must outlive the tracker. NULL = no spans.
 *
 * Threads: every function is thread-safe (one mutex per tracker). Ownership: strings in
 * inputs are copied; outputs are owned by the caller and released with the matching _free.
 */
#ifndef AGENTAFLOW_COST_H
#define AGENTAFLOW_COST_H

#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

typedef struct af_tracing af_tracing; /* tracing.h */
typedef struct af_cost_tracker af_cost_tracker;
typedef struct af_cost_entry af_cost_entry;

/* ---------------------------------------------------------------------------------------- */
/* Pricing (the original's GPUCostConfiguration).                                            */

/* GPU classes, recognised from a device name by case-insensitive substring in this order. */
typedef enum af_gpu_class {
    AF_GPU_A100 = 0,
    AF_GPU_V100,
    AF_GPU_T4,
    AF_GPU_RTX,
    AF_GPU_H100,
    AF_GPU_A10,
    AF_GPU_K80,
    AF_GPU_GENERIC,
    AF_GPU_CLASS_COUNT
} af_gpu_class;

/* "a100", "v100", "t4", "rtx", "h100", "a10", "k80", "generic". */
const char *af_gpu_class_name(af_gpu_class c);
/* The class of a device name ("NVIDIA A100-SXM4-40GB" -> AF_GPU_A100); NULL -> generic. */
af_gpu_class af_gpu_class_from_name(const char *gpu_name);

#define AF_COST_MAX_VOLUME_TIERS 8

typedef struct af_volume_discount {
    double min_hours; /* cumulative GPU hours priced so far by this tracker */
    double rate;      /* 0.05 = 5 % off */
} af_volume_discount;

typedef struct af_cost_pricing {
    /* USD (or `currency`) per GPU hour. Defaults are single-GPU on-demand cloud prices: a100
     * and v100 3.06 and t4 0.526 and rtx 1.00 and generic 1.50 (the original's), plus h100
     * 12.29 (p5.48xlarge / 8), a10 1.006 (g5.xlarge), k80 0.90 (p2.xlarge), which the original
     * recognised but priced as generic. */
    double per_hour[AF_GPU_CLASS_COUNT];
    bool use_utilization_factor;   /* true: idle GPUs cost less (formula below) */
    double min_utilization_factor; /* 0.1 */
    double idle_cost_reduction;    /* 0.1 */
    double spot_discount;          /* 0: fraction off, applied before volume discounts */
    double tax_rate;               /* 0: fraction added last */
    af_volume_discount volume[AF_COST_MAX_VOLUME_TIERS]; /* best tier whose min_hours is met */
    size_t n_volume;
    char currency[8]; /* "USD" */
} af_cost_pricing;

/* The defaults above. */
void af_cost_pricing_init(af_cost_pricing *p);

/*
 * Prices `hours` of one GPU of class `c` at average utilization `util_pct` (0-100, clamped):
 *   u = util/100; factor = u < 0.1 ? min + idle_reduction * u
 *                                  : clamp(min + u * (1 - min), min, 1)   (when enabled, else 1)
 *   cost = rate * hours * factor * (1 - spot) * (1 - volume(cumulative_hours + hours)) * (1 + tax)
 * Non-finite or negative inputs count as 0. Pure function; never NaN.
 */
double af_cost_price(const af_cost_pricing *p, af_gpu_class c, double hours, double util_pct,
                     double cumulative_hours);

/* ---------------------------------------------------------------------------------------- */
/* Tracker.                                                                                  */

/* The operation or model name entries are recorded under once max_names is reached. */
#define AF_COST_OTHER "other"

typedef struct af_cost_tracker_opts {
    af_cost_pricing pricing;
    uint32_t retention_s;        /* individual entries kept this long (86400) */
    uint32_t max_entries;        /* individual entries kept at most (10000) */
    uint32_t bucket_retention_h; /* hourly buckets kept this long (720 = 30 days) */
    uint32_t max_buckets;        /* hourly buckets kept at most (8192) */
    uint32_t forecast_window_h;  /* hours of history the forecast fits (6, at most retention) */
    /* Distinct operation names, and distinct model ids, kept apart (1000): the first ones seen
     * since creation; entries naming any other are recorded under AF_COST_OTHER, so summaries
     * and the metric labels built from them stay bounded whatever clients send. */
    uint32_t max_names;
    af_tracing *tracing; /* borrowed; NULL = use `tracer` */
    af_tracer *tracer;   /* borrowed; NULL = no spans */
    /* Called for every entry recorded (except those recorded with af_cost_record_saved or
     * restored), with every field resolved (id, currency, timestamp), so a caller can keep a
     * durable copy. Runs on the recording thread with the tracker's mutex held, in recording
     * order: copy and return, never call back into the tracker. The entry is borrowed for the
     * call. NULL = none. */
    void (*on_record)(const af_cost_entry *e, void *user);
    void *on_record_user;
} af_cost_tracker_opts;

void af_cost_tracker_opts_init(af_cost_tracker_opts *o);
/* Copies opts. Returns 0, -EINVAL (a zero limit, a bad price) or -ENOMEM. */
int af_cost_tracker_new(const af_cost_tracker_opts *opts, af_cost_tracker **out);
void af_cost_tracker_free(af_cost_tracker *t);
/* Replaces the plain tracer used when no af_tracing was given (NULL = no spans). */
void af_cost_tracker_set_tracer(af_cost_tracker *t, af_tracer *tracer);

/* One cost entry (the original's CostEntry). Strings borrowed for the call. */
struct af_cost_entry {
    const char *id;        /* NULL or "" = "cost-<n>" */
    const char *operation; /* required: "inference", "training", "gpu_compute", any name */
    const char *model_id;  /* NULL = "" */
    uint64_t duration_ns;
    int64_t tokens_used;   /* >= 0 */
    double gpu_hours;      /* >= 0, finite */
    double cost;           /* >= 0, finite */
    const char *currency;  /* NULL = the pricing currency */
    uint64_t timestamp_ns; /* 0 = now; any other value is kept as given */
};

/*
 * Records an entry (span cost_tracking.record_cost, child of `parent`, NULL = current span).
 * Returns 0, -EINVAL (missing operation, negative or non-finite numbers) or -ENOMEM.
 */
int af_cost_record(af_cost_tracker *t, const af_span_context *parent, const af_cost_entry *e);

/* af_cost_record for an entry the caller already made durable: the same span and checks,
 * no on_record callback. */
int af_cost_record_saved(af_cost_tracker *t, const af_span_context *parent, const af_cost_entry *e);

/* GPU usage to price and record as operation "gpu_compute", model "gpu_<class>". */
typedef struct af_gpu_usage {
    const char *gpu_id;    /* used in the entry id "gpu-<id>-<unix seconds>" */
    const char *gpu_name;  /* classifies the GPU (af_gpu_class_from_name) */
    double hours;          /* usage time */
    double utilization;    /* average utilization over `hours`, percent */
    uint64_t timestamp_ns; /* 0 = now */
} af_gpu_usage;

/* Prices the usage with the tracker's table (volume tiers see the tracker's cumulative GPU
 * hours) and records it. *amount (may be NULL) receives the cost. 0, -EINVAL or -ENOMEM. */
int af_cost_record_gpu_usage(af_cost_tracker *t, const af_span_context *parent,
                             const af_gpu_usage *u, double *amount);

/*
 * Durable state (the daemon's store) without spans:
 *  - af_cost_reserve_id gives the id an entry without one would get ("cost-<n>"), so the
 *    entry can be saved before it is recorded; record it with that id.
 *  - af_cost_restore_entry records a saved entry (no span); an id "cost-<n>" moves the next
 *    automatic id past n. af_cost_restore_id_floor does the same for ids no longer held.
 *  - af_cost_restore_hourly adds a saved hourly roll-up (entries older than the raw
 *    window), exactly as folding those entries would have.
 * GPU hours of "gpu_compute" entries count toward the volume tiers again.
 */
typedef struct af_cost_hourly {
    uint64_t hour_ns; /* rounded down to the hour */
    const char *operation;
    const char *model_id;
    double cost;
    double gpu_hours;
    int64_t tokens;
    uint64_t count; /* entries in it, >= 1 */
} af_cost_hourly;

int af_cost_reserve_id(af_cost_tracker *t, char *buf, size_t len);
void af_cost_restore_id_floor(af_cost_tracker *t, uint64_t n);
/* 0, -EINVAL or -ENOMEM. */
int af_cost_restore_entry(af_cost_tracker *t, const af_cost_entry *e);
int af_cost_restore_hourly(af_cost_tracker *t, const af_cost_hourly *h);

/* A group in a summary (one operation or one model). */
typedef struct af_cost_group {
    char *name;
    double cost;
    double gpu_hours;
    int64_t tokens;
    uint64_t count;
} af_cost_group;

typedef struct af_cost_summary {
    uint64_t start_ns, end_ns; /* the half-open range [start, end) that was asked for */
    double total_cost;
    /* Operations whose name contains "inference" / "training" (case-insensitive), so the
     * demo's gpu_training and llm_inference count too; the original's two JSON keys. */
    double inference_cost;
    double training_cost;
    double total_gpu_hours;
    int64_t total_tokens;
    uint64_t entry_count;
    double avg_cost_per_hour; /* total_cost / total_gpu_hours; 0 without GPU hours */
    char currency[8];
    af_cost_group *by_operation; /* sorted by name */
    size_t n_by_operation;
    af_cost_group *by_model; /* sorted by name; "" = no model */
    size_t n_by_model;
} af_cost_summary;

/*
 * Sums the entries with start <= timestamp < end. Folded entries count when their hour
 * starts in the range. end 0 = now. Span cost_tracking.get_cost_summary. On success *out
 * owns its arrays: release with af_cost_summary_clear. 0, -EINVAL (start > end), -ENOMEM.
 */
int af_cost_summary_get(af_cost_tracker *t, const af_span_context *parent, uint64_t start_ns,
                        uint64_t end_ns, af_cost_summary *out);
/* Releases the arrays s owns and zeroes them, leaving the struct (the caller's) ready for
 * another _get; NULL is a no-op. `_clear`, not `_free`: s is embedded, never allocated by
 * the library. */
void af_cost_summary_clear(af_cost_summary *s);
/* The former name of af_cost_summary_clear, kept because it is part of the released ABI
 * (AGENTAFLOW_0) and services outside this tree call it; same behaviour. New code uses
 * _clear. */
void af_cost_summary_free(af_cost_summary *s);
/*
 * JSON object with the original's keys (total_cost, inference_cost, training_cost,
 * total_tokens, total_gpu_hours, operation_counts, period_start, period_end as RFC 3339)
 * plus currency, entry_count, avg_cost_per_hr, by_operation and by_model (name -> {cost,
 * gpu_hours, tokens, count}). *out is malloc'd. 0 or -ENOMEM.
 */
int af_cost_summary_json(const af_cost_summary *s, char **out);

/*
 * 24 h forecast. Method: the last forecast_window_h hours (or less, back to the earlier of
 * the tracker's creation and its oldest entry) are split into n <= window equal slots; each
 * slot's cost rate (per hour) is fitted by least squares against the slot's mid-time; the
 * fitted line's value now is current_rate and its slope is trend; the forecast is the
 * integral over the next 24 h of max(0, current_rate + trend * t). One slot or identical
 * rates give a flat forecast; no data gives 0. Never NaN or infinite.
 */
typedef struct af_cost_forecast {
    double predicted_cost_24h;
    double current_rate_per_hour;
    double trend_per_hour; /* change of the hourly rate per hour */
    double window_hours;   /* history actually used */
    uint32_t slots;
} af_cost_forecast;

/* now_ns 0 = now. */
int af_cost_forecast_24h(af_cost_tracker *t, uint64_t now_ns, af_cost_forecast *out);

typedef struct af_cost_stats {
    uint64_t entries;           /* individual entries held */
    uint64_t buckets;           /* hourly buckets held */
    uint64_t recorded;          /* entries ever recorded */
    uint64_t folded;            /* entries folded into buckets */
    uint64_t dropped;           /* buckets discarded past bucket retention or max_buckets */
    uint64_t operations_folded; /* entries recorded as operation AF_COST_OTHER (max_names) */
    uint64_t models_folded;     /* entries recorded as model AF_COST_OTHER (max_names) */
    double cumulative_gpu_hours_priced;
} af_cost_stats;

void af_cost_stats_get(af_cost_tracker *t, af_cost_stats *out);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
