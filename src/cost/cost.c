/*
 * Cost tracker: individual entries in a timestamp-sorted array, folded into hourly buckets
 * once they leave the retention window, so memory stays bounded whatever the input rate.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agentaflow/cost.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/tracing.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/timeutil.h"

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_H (UINT64_C(3600) * NS_PER_S)

typedef struct cost_rec {
    char *id;
    char *operation;
    char *model_id;
    char *currency;
    uint64_t duration_ns;
    int64_t tokens;
    double gpu_hours;
    double cost;
    uint64_t ts;
} cost_rec;

typedef struct cost_bucket {
    uint64_t hour_ns; /* start of the hour */
    char *operation;
    char *model_id;
    double cost;
    double gpu_hours;
    int64_t tokens;
    uint64_t count;
} cost_bucket;

/* The names kept apart (opts.max_names of them): open addressing over FNV-1a, load at most
 * one half, never shrinking, so a name keeps its own series for the tracker's life. */
typedef struct name_set {
    char **slots;
    size_t cap; /* a power of two, at least 2 * max; 0 until the first name */
    size_t n, max;
    uint64_t folded; /* entries recorded as AF_COST_OTHER */
} name_set;

struct af_cost_tracker {
    pthread_mutex_t mu;
    name_set ops, models;
    af_cost_tracker_opts opts;
    af_tracer *tracer;
    uint64_t created_ns;
    cost_rec *recs; /* sorted by ts, live range [head, head + n) */
    size_t head, n, cap;
    cost_bucket *buckets; /* sorted by hour_ns */
    size_t n_buckets, cap_buckets;
    uint64_t recorded, folded, dropped, next_id;
    double cumulative_hours;
};

static const char *const class_names[AF_GPU_CLASS_COUNT] = {"a100", "v100", "t4",  "rtx",
                                                            "h100", "a10",  "k80", "generic"};

const char *af_gpu_class_name(af_gpu_class c)
{
    return (unsigned)c < AF_GPU_CLASS_COUNT ? class_names[c] : "generic";
}

af_gpu_class af_gpu_class_from_name(const char *gpu_name)
{
    if (!gpu_name)
        return AF_GPU_GENERIC;
    /* The original's order: "a100" before "a10" so an A100 is never taken for an A10. */
    for (int c = 0; c < AF_GPU_GENERIC; c++)
        if (strcasestr(gpu_name, class_names[c]))
            return (af_gpu_class)c;
    return AF_GPU_GENERIC;
}

void af_cost_pricing_init(af_cost_pricing *p)
{
    memset(p, 0, sizeof(*p));
    p->per_hour[AF_GPU_A100] = 3.06;
    p->per_hour[AF_GPU_V100] = 3.06;
    p->per_hour[AF_GPU_T4] = 0.526;
    p->per_hour[AF_GPU_RTX] = 1.00;
    p->per_hour[AF_GPU_H100] = 12.29;
    p->per_hour[AF_GPU_A10] = 1.006;
    p->per_hour[AF_GPU_K80] = 0.90;
    p->per_hour[AF_GPU_GENERIC] = 1.50;
    p->use_utilization_factor = true;
    p->min_utilization_factor = 0.1;
    p->idle_cost_reduction = 0.1;
    af__strlcpy(p->currency, "USD", sizeof(p->currency));
}

static double nonneg(double v)
{
    return (isfinite(v) && v > 0) ? v : 0.0;
}

double af_cost_price(const af_cost_pricing *p, af_gpu_class c, double hours, double util_pct,
                     double cumulative_hours)
{
    if ((unsigned)c >= AF_GPU_CLASS_COUNT)
        c = AF_GPU_GENERIC;
    hours = nonneg(hours);
    double rate = nonneg(p->per_hour[c]);
    double factor = 1.0;
    if (p->use_utilization_factor) {
        double u = nonneg(util_pct) / 100.0;
        if (u > 1.0)
            u = 1.0;
        double min = nonneg(p->min_utilization_factor);
        if (min > 1.0)
            min = 1.0;
        if (u < 0.1) {
            factor = min + nonneg(p->idle_cost_reduction) * u;
        } else {
            factor = min + u * (1.0 - min);
            factor = factor < min ? min : (factor > 1.0 ? 1.0 : factor);
        }
    }
    double cost = rate * hours * factor * (1.0 - fmin(nonneg(p->spot_discount), 1.0));
    /* Tiers are met by the cumulative hours including this usage: the original compared the
     * per-sample hours, which are seconds long, so no tier ever applied. */
    double total = nonneg(cumulative_hours) + hours, best = 0.0;
    for (size_t i = 0; i < p->n_volume && i < AF_COST_MAX_VOLUME_TIERS; i++)
        if (total >= p->volume[i].min_hours && nonneg(p->volume[i].rate) > best)
            best = fmin(nonneg(p->volume[i].rate), 1.0);
    cost *= (1.0 - best) * (1.0 + nonneg(p->tax_rate));
    return isfinite(cost) ? cost : 0.0;
}

void af_cost_tracker_opts_init(af_cost_tracker_opts *o)
{
    memset(o, 0, sizeof(*o));
    af_cost_pricing_init(&o->pricing);
    o->retention_s = 86400;
    o->max_entries = 10000;
    o->bucket_retention_h = 720;
    o->max_buckets = 8192;
    o->forecast_window_h = 6;
    o->max_names = 1000;
}

int af_cost_tracker_new(const af_cost_tracker_opts *opts, af_cost_tracker **out)
{
    af_cost_tracker_opts def;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!opts) {
        af_cost_tracker_opts_init(&def);
        opts = &def;
    }
    if (!opts->retention_s || !opts->max_entries || !opts->bucket_retention_h ||
        !opts->max_buckets || !opts->forecast_window_h || !opts->max_names)
        return -EINVAL;
    for (int c = 0; c < AF_GPU_CLASS_COUNT; c++)
        if (!isfinite(opts->pricing.per_hour[c]) || opts->pricing.per_hour[c] < 0)
            return -EINVAL;
    af_cost_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    t->opts = *opts;
    if (!t->opts.pricing.currency[0])
        af__strlcpy(t->opts.pricing.currency, "USD", sizeof(t->opts.pricing.currency));
    t->opts.pricing.currency[sizeof(t->opts.pricing.currency) - 1] = '\0';
    t->tracer = opts->tracer;
    t->created_ns = af_now_ns();
    t->ops.max = t->models.max = opts->max_names;
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    free(t);
    return -ENOMEM;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The name an entry is recorded under: itself when it is (or can become) one of the kept
 * names, else AF_COST_OTHER. "" (no model) and AF_COST_OTHER take no place. Out of memory
 * folds too: recording must not fail because a name could not be remembered. */
static const char *name_admit(name_set *s, const char *name)
{
    if (!name[0] || strcmp(name, AF_COST_OTHER) == 0)
        return name;
    if (!s->cap) {
        size_t cap = 16;
        while (cap < 2 * s->max)
            cap *= 2;
        if (!(s->slots = calloc(cap, sizeof(*s->slots))))
            goto fold;
        s->cap = cap;
    }
    for (size_t i = name_hash(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slots[i]) {
            if (s->n == s->max || !(s->slots[i] = af__strdup(name)))
                goto fold;
            s->n++;
            return name;
        }
        if (strcmp(s->slots[i], name) == 0)
            return name;
    }
fold:
    s->folded++;
    return AF_COST_OTHER;
}

static void name_set_free(name_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
}

static void rec_clear(cost_rec *r)
{
    free(r->id);
    free(r->operation);
    free(r->model_id);
    free(r->currency);
}

static void bucket_clear(cost_bucket *b)
{
    free(b->operation);
    free(b->model_id);
}

void af_cost_tracker_free(af_cost_tracker *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        rec_clear(&t->recs[t->head + i]);
    for (size_t i = 0; i < t->n_buckets; i++)
        bucket_clear(&t->buckets[i]);
    free(t->recs);
    free(t->buckets);
    name_set_free(&t->ops);
    name_set_free(&t->models);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void af_cost_tracker_set_tracer(af_cost_tracker *t, af_tracer *tracer)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->tracer = tracer;
    pthread_mutex_unlock(&t->mu);
}

static af_tracer *tracer_of(af_cost_tracker *t)
{
    /* Asked per operation: a reload may flip the component's toggle. */
    if (t->opts.tracing)
        return af_tracing_tracer_for(t->opts.tracing, AF_TRACE_COST_CALCULATIONS);
    pthread_mutex_lock(&t->mu);
    af_tracer *tr = t->tracer;
    pthread_mutex_unlock(&t->mu);
    return tr;
}

/* Drops the oldest buckets past their retention or the bucket cap. Caller holds mu. */
static void trim_buckets(af_cost_tracker *t, uint64_t now)
{
    uint64_t keep = (uint64_t)t->opts.bucket_retention_h * NS_PER_H;
    size_t drop = 0;
    while (drop < t->n_buckets &&
           (t->n_buckets - drop > t->opts.max_buckets ||
            (now > keep && t->buckets[drop].hour_ns + NS_PER_H <= now - keep)))
        bucket_clear(&t->buckets[drop++]);
    if (!drop)
        return;
    memmove(t->buckets, t->buckets + drop, (t->n_buckets - drop) * sizeof(*t->buckets));
    t->n_buckets -= drop;
    t->dropped += drop;
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Adds one record's numbers to its hourly bucket (found or inserted in order). Takes the
 * record's strings on insert. Caller holds mu. */
static int fold(af_cost_tracker *t, cost_rec *r)
{
    uint64_t hour = r->ts - r->ts % NS_PER_H;
    size_t lo = 0, hi = t->n_buckets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->buckets[mid].hour_ns < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < t->n_buckets && t->buckets[i].hour_ns == hour; i++) {
        cost_bucket *b = &t->buckets[i];
        if (str_eq(b->operation, r->operation) && str_eq(b->model_id, r->model_id)) {
            b->cost += r->cost;
            b->gpu_hours += r->gpu_hours;
            b->tokens += r->tokens;
            b->count++;
            rec_clear(r);
            t->folded++;
            return 0;
        }
    }
    if (t->n_buckets == t->cap_buckets) {
        size_t ncap = t->cap_buckets ? t->cap_buckets * 2 : 16;
        cost_bucket *nb = realloc(t->buckets, ncap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        t->buckets = nb;
        t->cap_buckets = ncap;
    }
    memmove(t->buckets + lo + 1, t->buckets + lo, (t->n_buckets - lo) * sizeof(*t->buckets));
    t->buckets[lo] = (cost_bucket){.hour_ns = hour,
                                   .operation = r->operation,
                                   .model_id = r->model_id,
                                   .cost = r->cost,
                                   .gpu_hours = r->gpu_hours,
                                   .tokens = r->tokens,
                                   .count = 1};
    t->n_buckets++;
    r->operation = r->model_id = NULL;
    rec_clear(r);
    t->folded++;
    return 0;
}

/* Folds the records that left the retention window, and the oldest while over the cap.
 * Caller holds mu. */
static void maintain(af_cost_tracker *t, uint64_t now)
{
    uint64_t keep = (uint64_t)t->opts.retention_s * NS_PER_S;
    uint64_t cutoff = now > keep ? now - keep : 0;
    while (t->n && (t->n > t->opts.max_entries || t->recs[t->head].ts < cutoff)) {
        if (fold(t, &t->recs[t->head]) != 0) {
            /* Out of memory for a bucket: lose the record rather than grow without bound. */
            rec_clear(&t->recs[t->head]);
            t->dropped++;
        }
        t->head++;
        t->n--;
    }
    trim_buckets(t, now);
}

static int insert_rec(af_cost_tracker *t, cost_rec *r)
{
    if (t->head + t->n == t->cap) {
        if (t->head > 0) {
            memmove(t->recs, t->recs + t->head, t->n * sizeof(*t->recs));
            t->head = 0;
        }
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 64;
            cost_rec *nr = realloc(t->recs, ncap * sizeof(*nr));
            if (!nr)
                return -ENOMEM;
            t->recs = nr;
            t->cap = ncap;
        }
    }
    /* Usually appended; an older caller timestamp is inserted in order. */
    cost_rec *base = t->recs + t->head;
    size_t pos = t->n;
    while (pos > 0 && base[pos - 1].ts > r->ts)
        pos--;
    memmove(base + pos + 1, base + pos, (t->n - pos) * sizeof(*base));
    base[pos] = *r;
    t->n++;
    return 0;
}

static bool entry_valid(const af_cost_entry *e)
{
    return e && e->operation && e->operation[0] && e->tokens_used >= 0 && isfinite(e->gpu_hours) &&
           e->gpu_hours >= 0 && isfinite(e->cost) && e->cost >= 0;
}

static int record_locked(af_cost_tracker *t, const af_cost_entry *e, uint64_t now, bool saved)
{
    cost_rec r = {.duration_ns = e->duration_ns,
                  .tokens = e->tokens_used,
                  .gpu_hours = e->gpu_hours,
                  .cost = e->cost,
                  .ts = e->timestamp_ns ? e->timestamp_ns : now};
    char idbuf[32];
    if (!e->id || !e->id[0])
        snprintf(idbuf, sizeof(idbuf), "cost-%" PRIu64, ++t->next_id);
    r.id = af__strdup(e->id && e->id[0] ? e->id : idbuf);
    r.operation = af__strdup(name_admit(&t->ops, e->operation));
    r.model_id = af__strdup(name_admit(&t->models, e->model_id ? e->model_id : ""));
    r.currency = af__strdup(e->currency ? e->currency : t->opts.pricing.currency);
    if (!r.id || !r.operation || !r.model_id || !r.currency || insert_rec(t, &r) != 0) {
        rec_clear(&r);
        return -ENOMEM;
    }
    if (t->opts.on_record && !saved) {
        /* Under the mutex, so a durable copy sees entries in the order they were taken. */
        af_cost_entry done = {.id = r.id,
                              .operation = r.operation,
                              .model_id = r.model_id,
                              .duration_ns = r.duration_ns,
                              .tokens_used = r.tokens,
                              .gpu_hours = r.gpu_hours,
                              .cost = r.cost,
                              .currency = r.currency,
                              .timestamp_ns = r.ts};
        t->opts.on_record(&done, t->opts.on_record_user);
    }
    t->recorded++;
    maintain(t, now);
    return 0;
}

static int record(af_cost_tracker *t, const af_span_context *parent, const af_cost_entry *e,
                  bool saved)
{
    if (!t)
        return -EINVAL;
    af_tracer *tr = tracer_of(t);
    af_span span = af_trace_cost_calculation(tr, parent, "record_cost", e ? e->gpu_hours : 0);
    if (!entry_valid(e)) {
        af_operation_end(span, -EINVAL, "invalid_argument",
                         "cost entry needs an operation and finite non-negative numbers");
        return -EINVAL;
    }
    af_span_set_attrs(span, AF_ATTRS(AF_STR("cost.operation", e->operation),
                                     AF_DOUBLE("cost.gpu_hours", e->gpu_hours),
                                     AF_INT("cost.tokens_used", e->tokens_used),
                                     AF_DOUBLE("cost.amount", e->cost)));
    pthread_mutex_lock(&t->mu);
    int rc = record_locked(t, e, af_now_ns(), saved);
    pthread_mutex_unlock(&t->mu);
    if (rc == 0)
        af_span_add_event(span, "cost.recorded",
                          AF_ATTRS(AF_STR("operation", e->operation), AF_DOUBLE("cost", e->cost)));
    af_operation_end(span, rc, rc ? "out_of_memory" : NULL, rc ? af_strerror(rc) : NULL);
    return rc;
}

int af_cost_record(af_cost_tracker *t, const af_span_context *parent, const af_cost_entry *e)
{
    return record(t, parent, e, false);
}

int af_cost_record_saved(af_cost_tracker *t, const af_span_context *parent, const af_cost_entry *e)
{
    return record(t, parent, e, true);
}

int af_cost_record_gpu_usage(af_cost_tracker *t, const af_span_context *parent,
                             const af_gpu_usage *u, double *amount)
{
    if (!t || !u || !isfinite(u->hours) || u->hours < 0 || !isfinite(u->utilization))
        return -EINVAL;
    af_gpu_class c = af_gpu_class_from_name(u->gpu_name);
    uint64_t ts = u->timestamp_ns ? u->timestamp_ns : af_now_ns();
    pthread_mutex_lock(&t->mu);
    double cost = af_cost_price(&t->opts.pricing, c, u->hours, u->utilization, t->cumulative_hours);
    t->cumulative_hours += u->hours;
    pthread_mutex_unlock(&t->mu);
    char id[160], model[32];
    snprintf(id, sizeof(id), "gpu-%s-%" PRIu64, u->gpu_id ? u->gpu_id : "unknown", ts / NS_PER_S);
    snprintf(model, sizeof(model), "gpu_%s", af_gpu_class_name(c));
    af_cost_entry e = {.id = id,
                       .operation = "gpu_compute",
                       .model_id = model,
                       .duration_ns = (uint64_t)(u->hours * 3600.0 * 1e9),
                       .gpu_hours = u->hours,
                       .cost = cost,
                       .timestamp_ns = ts};
    int rc = af_cost_record(t, parent, &e);
    if (rc == 0 && amount)
        *amount = cost;
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Ids and restore.                                                                          */

int af_cost_reserve_id(af_cost_tracker *t, char *buf, size_t len)
{
    if (!t || !buf || len < 8)
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    uint64_t n = ++t->next_id;
    pthread_mutex_unlock(&t->mu);
    snprintf(buf, len, "cost-%" PRIu64, n);
    return 0;
}

void af_cost_restore_id_floor(af_cost_tracker *t, uint64_t n)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (n > t->next_id)
        t->next_id = n;
    pthread_mutex_unlock(&t->mu);
}

/* Volume tiers see the GPU hours priced before the restart too. */
static void restore_hours(af_cost_tracker *t, const char *operation, double hours)
{
    if (strcmp(operation, "gpu_compute") == 0 && isfinite(hours) && hours > 0)
        t->cumulative_hours += hours;
}

int af_cost_restore_entry(af_cost_tracker *t, const af_cost_entry *e)
{
    if (!t || !entry_valid(e))
        return -EINVAL;
    pthread_mutex_lock(&t->mu);
    /* It came from the durable copy: no callback. */
    int rc = record_locked(t, e, af_now_ns(), true);
    if (rc == 0)
        restore_hours(t, e->operation, e->gpu_hours);
    uint64_t n;
    char tail;
    /* An automatic id seen again: the next one is past it. */
    if (rc == 0 && e->id && sscanf(e->id, "cost-%" SCNu64 "%c", &n, &tail) == 1 && n > t->next_id)
        t->next_id = n;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int af_cost_restore_hourly(af_cost_tracker *t, const af_cost_hourly *h)
{
    if (!t || !h || !h->operation || !h->operation[0] || !isfinite(h->cost) || h->cost < 0 ||
        !isfinite(h->gpu_hours) || h->gpu_hours < 0 || h->tokens < 0 || !h->count)
        return -EINVAL;
    cost_rec r = {.ts = h->hour_ns - h->hour_ns % NS_PER_H,
                  .cost = h->cost,
                  .gpu_hours = h->gpu_hours,
                  .tokens = h->tokens,
                  .operation = af__strdup(h->operation),
                  .model_id = af__strdup(h->model_id ? h->model_id : "")};
    if (!r.operation || !r.model_id) {
        rec_clear(&r);
        return -ENOMEM;
    }
    pthread_mutex_lock(&t->mu);
    /* fold() adds one record's count; the roll-up brings count entries. */
    int rc = fold(t, &r);
    if (rc == 0) {
        uint64_t hour = h->hour_ns - h->hour_ns % NS_PER_H;
        for (size_t i = 0; i < t->n_buckets; i++) {
            cost_bucket *b = &t->buckets[i];
            if (b->hour_ns == hour && str_eq(b->operation, h->operation) &&
                str_eq(b->model_id, h->model_id ? h->model_id : "")) {
                b->count += h->count - 1;
                break;
            }
        }
        t->folded += h->count - 1;
        t->recorded += h->count;
        restore_hours(t, h->operation, h->gpu_hours);
        trim_buckets(t, af_now_ns());
    } else {
        rec_clear(&r);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Summaries.                                                                                */

typedef struct group_list {
    af_cost_group *g;
    size_t n, cap;
    bool failed;
} group_list;

static void group_add(group_list *l, const char *name, double cost, double hours, int64_t tokens,
                      uint64_t count)
{
    name = name ? name : "";
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->g[i].name, name) == 0) {
            l->g[i].cost += cost;
            l->g[i].gpu_hours += hours;
            l->g[i].tokens += tokens;
            l->g[i].count += count;
            return;
        }
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        af_cost_group *ng = realloc(l->g, ncap * sizeof(*ng));
        if (!ng) {
            l->failed = true;
            return;
        }
        l->g = ng;
        l->cap = ncap;
    }
    char *copy = af__strdup(name);
    if (!copy) {
        l->failed = true;
        return;
    }
    l->g[l->n++] = (af_cost_group){copy, cost, hours, tokens, count};
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const af_cost_group *)a)->name, ((const af_cost_group *)b)->name);
}

static void groups_free(af_cost_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(g[i].name);
    free(g);
}

static void summary_add(af_cost_summary *s, group_list *ops, group_list *models, const char *op,
                        const char *model, double cost, double hours, int64_t tokens,
                        uint64_t count)
{
    s->total_cost += cost;
    s->total_gpu_hours += hours;
    s->total_tokens += tokens;
    s->entry_count += count;
    if (strcasestr(op, "inference"))
        s->inference_cost += cost;
    if (strcasestr(op, "training"))
        s->training_cost += cost;
    group_add(ops, op, cost, hours, tokens, count);
    group_add(models, model, cost, hours, tokens, count);
}

int af_cost_summary_get(af_cost_tracker *t, const af_span_context *parent, uint64_t start_ns,
                        uint64_t end_ns, af_cost_summary *out)
{
    if (!t || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!end_ns)
        end_ns = af_now_ns();
    af_span span = af_trace_cost_calculation(tracer_of(t), parent, "get_cost_summary", 0);
    char st[40], en[40];
    af__fmt_rfc3339(start_ns, 9, st);
    af__fmt_rfc3339(end_ns, 9, en);
    af_span_set_attrs(span, AF_ATTRS(AF_STR("cost.start_time", st), AF_STR("cost.end_time", en)));
    if (start_ns > end_ns) {
        af_operation_end(span, -EINVAL, "invalid_argument", "start is after end");
        return -EINVAL;
    }
    out->start_ns = start_ns;
    out->end_ns = end_ns;
    group_list ops = {0}, models = {0};
    pthread_mutex_lock(&t->mu);
    af__strlcpy(out->currency, t->opts.pricing.currency, sizeof(out->currency));
    for (size_t i = 0; i < t->n_buckets; i++) {
        const cost_bucket *b = &t->buckets[i];
        if (b->hour_ns >= start_ns && b->hour_ns < end_ns)
            summary_add(out, &ops, &models, b->operation, b->model_id, b->cost, b->gpu_hours,
                        b->tokens, b->count);
    }
    for (size_t i = 0; i < t->n; i++) {
        const cost_rec *r = &t->recs[t->head + i];
        if (r->ts >= start_ns && r->ts < end_ns)
            summary_add(out, &ops, &models, r->operation, r->model_id, r->cost, r->gpu_hours,
                        r->tokens, 1);
    }
    pthread_mutex_unlock(&t->mu);
    if (ops.failed || models.failed) {
        groups_free(ops.g, ops.n);
        groups_free(models.g, models.n);
        memset(out, 0, sizeof(*out));
        af_operation_end(span, -ENOMEM, "out_of_memory", af_strerror(-ENOMEM));
        return -ENOMEM;
    }
    if (ops.n)
        qsort(ops.g, ops.n, sizeof(*ops.g), group_cmp);
    if (models.n)
        qsort(models.g, models.n, sizeof(*models.g), group_cmp);
    out->by_operation = ops.g;
    out->n_by_operation = ops.n;
    out->by_model = models.g;
    out->n_by_model = models.n;
    out->avg_cost_per_hour = out->total_gpu_hours > 0 ? out->total_cost / out->total_gpu_hours : 0;
    /* cost.gpu_hours is the real total; the original read a key that does not exist. */
    af_span_set_attrs(span, AF_ATTRS(AF_DOUBLE("cost.total", out->total_cost),
                                     AF_DOUBLE("cost.gpu_hours", out->total_gpu_hours),
                                     AF_INT("cost.tokens_used", out->total_tokens)));
    af_operation_end(span, 0, NULL, NULL);
    return 0;
}

void af_cost_summary_clear(af_cost_summary *s)
{
    if (!s)
        return;
    groups_free(s->by_operation, s->n_by_operation);
    groups_free(s->by_model, s->n_by_model);
    s->by_operation = s->by_model = NULL;
    s->n_by_operation = s->n_by_model = 0;
}

/* The released ABI's name (AGENTAFLOW_0), kept for services outside this tree. */
void af_cost_summary_free(af_cost_summary *s)
{
    af_cost_summary_clear(s);
}

static void json_groups(af_buf *b, const char *key, const af_cost_group *g, size_t n)
{
    af__buf_printf(b, ",\"%s\":{", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__buf_json_string(b, g[i].name, strlen(g[i].name));
        af__buf_printf(
            b, ":{\"cost\":%.17g,\"gpu_hours\":%.17g,\"tokens\":%" PRId64 ",\"count\":%" PRIu64 "}",
            g[i].cost, g[i].gpu_hours, g[i].tokens, g[i].count);
    }
    af__buf_putc(b, '}');
}

int af_cost_summary_json(const af_cost_summary *s, char **out)
{
    if (!s || !out)
        return -EINVAL;
    af_buf b;
    af__buf_init(&b);
    char st[40], en[40];
    af__fmt_rfc3339(s->start_ns, 9, st);
    af__fmt_rfc3339(s->end_ns, 9, en);
    af__buf_printf(&b,
                   "{\"total_cost\":%.17g,\"inference_cost\":%.17g,\"training_cost\":%.17g,"
                   "\"total_tokens\":%" PRId64 ",\"total_gpu_hours\":%.17g,"
                   "\"avg_cost_per_hr\":%.17g,\"entry_count\":%" PRIu64 ",\"currency\":",
                   s->total_cost, s->inference_cost, s->training_cost, s->total_tokens,
                   s->total_gpu_hours, s->avg_cost_per_hour, s->entry_count);
    af__buf_json_string(&b, s->currency, strlen(s->currency));
    af__buf_printf(&b, ",\"period_start\":\"%s\",\"period_end\":\"%s\",\"operation_counts\":{", st,
                   en);
    for (size_t i = 0; i < s->n_by_operation; i++) {
        if (i)
            af__buf_putc(&b, ',');
        af__buf_json_string(&b, s->by_operation[i].name, strlen(s->by_operation[i].name));
        af__buf_printf(&b, ":%" PRIu64, s->by_operation[i].count);
    }
    af__buf_putc(&b, '}');
    json_groups(&b, "by_operation", s->by_operation, s->n_by_operation);
    json_groups(&b, "by_model", s->by_model, s->n_by_model);
    af__buf_putc(&b, '}');
    return af__buf_finish(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Forecast.                                                                                 */

/* Integral over [0, 24] of max(0, r + b t). */
static double positive_integral_24h(double r, double b)
{
    const double T = 24.0;
    if (b == 0.0)
        return r > 0 ? r * T : 0.0;
    double t0 = -r / b; /* where the line crosses zero */
    double lo = 0.0, hi = T;
    if (b > 0)
        lo = fmax(0.0, fmin(T, t0));
    else
        hi = fmax(0.0, fmin(T, t0));
    if (hi <= lo)
        return 0.0;
    return r * (hi - lo) + b * (hi * hi - lo * lo) / 2.0;
}

int af_cost_forecast_24h(af_cost_tracker *t, uint64_t now_ns, af_cost_forecast *out)
{
    if (!t || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!now_ns)
        now_ns = af_now_ns();
    pthread_mutex_lock(&t->mu);
    uint32_t wh = t->opts.forecast_window_h;
    uint64_t ret_h = t->opts.retention_s / 3600u;
    if (ret_h >= 1 && wh > ret_h)
        wh = (uint32_t)ret_h;
    if (wh > 64)
        wh = 64; /* the slot array below */
    uint64_t window = (uint64_t)wh * NS_PER_H;
    uint64_t origin = t->created_ns;
    if (t->n && t->recs[t->head].ts < origin)
        origin = t->recs[t->head].ts;
    if (t->n_buckets && t->buckets[0].hour_ns < origin)
        origin = t->buckets[0].hour_ns;
    uint64_t span = now_ns > origin ? now_ns - origin : 0;
    if (span > window)
        span = window;
    if (span < NS_PER_S) {
        /* Less than a second of history: there is no rate to speak of. */
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    uint32_t slots = (uint32_t)((span + NS_PER_H - 1) / NS_PER_H);
    if (slots < 1)
        slots = 1;
    double slot_ns = (double)span / slots, slot_h = slot_ns / (double)NS_PER_H;
    double cost[64] = {0};
    uint64_t from = now_ns - span;
    for (size_t i = 0; i < t->n; i++) {
        const cost_rec *r = &t->recs[t->head + i];
        if (r->ts < from || r->ts > now_ns)
            continue;
        uint32_t k = (uint32_t)((double)(r->ts - from) / slot_ns);
        cost[k < slots ? k : slots - 1] += r->cost;
    }
    for (size_t i = 0; i < t->n_buckets; i++) {
        const cost_bucket *b = &t->buckets[i];
        if (b->hour_ns < from || b->hour_ns > now_ns)
            continue;
        uint32_t k = (uint32_t)((double)(b->hour_ns - from) / slot_ns);
        cost[k < slots ? k : slots - 1] += b->cost;
    }
    pthread_mutex_unlock(&t->mu);
    /* Least squares of rate against slot mid-time in hours, with now at x = 0. */
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (uint32_t k = 0; k < slots; k++) {
        double x = -((double)(slots - k) - 0.5) * slot_h;
        double y = cost[k] / slot_h;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double n = slots, mean_x = sx / n, mean_y = sy / n;
    double var = sxx - n * mean_x * mean_x, b = 0.0;
    if (slots > 1 && var > 1e-12)
        b = (sxy - n * mean_x * mean_y) / var;
    double r = mean_y - b * mean_x;
    if (!isfinite(b) || !isfinite(r))
        b = 0.0, r = isfinite(mean_y) ? mean_y : 0.0;
    out->current_rate_per_hour = r > 0 ? r : 0.0;
    out->trend_per_hour = b;
    out->predicted_cost_24h = positive_integral_24h(r, b);
    out->window_hours = (double)span / (double)NS_PER_H;
    out->slots = slots;
    return 0;
}

void af_cost_stats_get(af_cost_tracker *t, af_cost_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    out->entries = t->n;
    out->buckets = t->n_buckets;
    out->recorded = t->recorded;
    out->folded = t->folded;
    out->dropped = t->dropped;
    out->operations_folded = t->ops.folded;
    out->models_folded = t->models.folded;
    out->cumulative_gpu_hours_priced = t->cumulative_hours;
    pthread_mutex_unlock(&t->mu);
}
