/*
 * Handlers: costs (record, summary, forecast) and alerts (list, summary, resolve).
 * Split out of routes.c; the route table and matcher stay there (see routes_int.h).
 */
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/limits.h"
#include "server/routes_cluster.h"
#include "server/server_int.h"
#include "util/timeutil.h"
#include "util/str.h"
#include "server/routes_int.h"

int af__h_costs(af__req *rq, af__resp *rs)
{
    af__put_cost_summary(rq->srv, &rs->body, NULL);
    return 0;
}

static void apply_cost(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    const af_cost_entry *e = &c->u.cost;
    int rc = af_cost_record_saved(s->o.costs, &c->parent, e);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "invalid cost entry");
        return;
    }
    rs->status = 201;
    af__buf_puts(&rs->body, "{\"status\":\"recorded\",\"id\":");
    af__put_str(&rs->body, e->id);
    af__buf_puts(&rs->body, ",\"operation\":");
    af__put_str(&rs->body, e->operation);
    af__buf_printf(&rs->body, ",\"cost\":%.6f}", e->cost);
}

int af__h_cost_record(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    json_t *o = af__parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_cost_entry e = {0};
    double dur_ms = 0, tokens = 0;
    if (af__get_field(o, AF__F_COST_ID, &e.id, rs) &&
        af__get_field(o, AF__F_COST_OPERATION, &e.operation, rs) &&
        af__get_field(o, AF__F_COST_MODEL_ID, &e.model_id, rs) &&
        af__get_field(o, AF__F_COST_CURRENCY, &e.currency, rs) &&
        af__get_num(o, "duration_ms", 0, 1e12, &dur_ms, rs) &&
        af__get_num(o, "tokens_used", 0, 9e15, &tokens, rs) &&
        af__get_num(o, "gpu_hours", 0, 1e9, &e.gpu_hours, rs) &&
        af__get_num(o, "cost", 0, 1e12, &e.cost, rs)) {
        write_ctx *c;
        if (!e.operation || !*e.operation) {
            af__resp_error(rs, 400, "invalid_argument", "\"operation\" is required");
        } else if ((c = af__write_ctx_new(rq, rs, o))) {
            e.duration_ns = (uint64_t)(dur_ms * 1e6);
            e.tokens_used = (int64_t)tokens;
            /* Everything the tracker would fill in is fixed now, so the saved entry and the
             * one in memory are the same entry. */
            if (!e.id || !*e.id) {
                af_cost_reserve_id(s->o.costs, c->id, sizeof(c->id));
                e.id = c->id;
            }
            e.timestamp_ns = af_now_ns();
            c->u.cost = e;
            af_store_op op = {.kind = AF_STORE_COST};
            op.u.cost = (af_store_cost){e.id,        e.operation,   e.model_id ? e.model_id : "",
                                        e.currency,  e.duration_ns, e.tokens_used,
                                        e.gpu_hours, e.cost,        e.timestamp_ns};
            arc = af__commit(rq, rs, &op, apply_cost, c, af__write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

static void put_groups(af_buf *b, const af_cost_group *g, size_t n)
{
    af__buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__put_str(b, g[i].name);
        af__buf_printf(b, ":{\"cost\":%.6f,\"gpu_hours\":%.6f,\"tokens\":%lld,\"count\":%llu}",
                       af__finite_or_zero(g[i].cost), af__finite_or_zero(g[i].gpu_hours),
                       (long long)g[i].tokens, (unsigned long long)g[i].count);
    }
    af__buf_putc(b, '}');
}

int af__h_costs_summary(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"current_period\":");
    af_cost_summary cs;
    af__put_cost_summary(s, b, &cs);
    af__buf_puts(b, ",\"by_operation\":");
    put_groups(b, cs.by_operation, cs.n_by_operation);
    af__buf_puts(b, ",\"by_model\":");
    put_groups(b, cs.by_model, cs.n_by_model);
    af_cost_summary_clear(&cs);
    /* Seven real calendar days (UTC), oldest first. */
    af__buf_puts(b, ",\"daily_breakdown\":[");
    uint64_t day = 86400ull * 1000000000ull, now = af_now_ns();
    uint64_t today = now / day * day;
    for (int i = 6; i >= 0; i--) {
        uint64_t start = today - (uint64_t)i * day;
        af_cost_summary d;
        double cost = 0;
        if (af_cost_summary_get(s->o.costs, NULL, start, start + day, &d) == 0) {
            cost = d.total_cost;
            af_cost_summary_clear(&d);
        }
        char ts[40];
        af__fmt_rfc3339(start, 9, ts);
        ts[10] = '\0';
        af__buf_printf(b, "%s{\"date\":\"%s\",\"cost\":%.6f}", i == 6 ? "" : ",", ts,
                       af__finite_or_zero(cost));
    }
    af__buf_puts(b, "]}");
    return 0;
}

int af__h_costs_forecast(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.costs, "cost tracker"))
        return 0;
    af_cost_forecast f;
    int rc = af_cost_forecast_24h(s->o.costs, 0, &f);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, "forecast failed");
        return 0;
    }
    /* Beyond 24 h the trend is not trusted: the current rate is held flat. */
    double rate = f.current_rate_per_hour > 0 ? f.current_rate_per_hour : 0;
    af__buf_printf(&rs->body,
                   "{\"next_24h\":%.6f,\"next_7_days\":%.6f,\"next_30_days\":%.6f,"
                   "\"current_rate_per_hour\":%.6f,\"trend_per_hour\":%.6f,\"window_hours\":%.3f,"
                   "\"slots\":%u,\"based_on\":\"least-squares fit of the hourly cost rate over "
                   "the last %.1f hours\"}",
                   af__finite_or_zero(f.predicted_cost_24h),
                   af__finite_or_zero(f.predicted_cost_24h + rate * 144.0),
                   af__finite_or_zero(f.predicted_cost_24h + rate * 696.0),
                   af__finite_or_zero(f.current_rate_per_hour),
                   af__finite_or_zero(f.trend_per_hour), af__finite_or_zero(f.window_hours),
                   f.slots, af__finite_or_zero(f.window_hours));
    return 0;
}

int af__h_alerts(af__req *rq, af__resp *rs)
{
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!al) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af__active_alerts(rq->srv, al, MAX_ALERTS);
    af__buf_putc(&rs->body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            af__buf_putc(&rs->body, ',');
        af__put_alert(&rs->body, &al[i]);
    }
    af__buf_putc(&rs->body, ']');
    free(al);
    return 0;
}

static void apply_alert_resolve(af_server *s, void *ctx, af__resp *rs)
{
    uint64_t id = ((write_ctx *)ctx)->u.alert_id;
    char name[40];
    snprintf(name, sizeof(name), "alert-%llu", (unsigned long long)id);
    if (af_gpu_collector_ack_alert(s->o.collector, id) != 0) {
        af__resp_error(rs, 404, "not_found", "alert %s not found", name);
        return;
    }
    af__buf_printf(&rs->body, "{\"id\":\"%s\",\"status\":\"resolved\"}", name);
    af__system_update(s, "alert_resolved", name);
}

int af__h_alert_resolve(af__req *rq, af__resp *rs)
{
    if (!af__component_present(rs, rq->srv->o.collector, "metrics collector"))
        return 0;
    const char *p = rq->params[0];
    if (strncmp(p, "alert-", 6) == 0)
        p += 6;
    uint64_t id;
    if (af__parse_u64(p, UINT64_MAX, &id) != 0) {
        af__resp_error(rs, 400, "invalid_argument",
                       "path parameter id: alert-<n> with n a decimal number in 0..%llu",
                       (unsigned long long)UINT64_MAX);
        return 0;
    }
    write_ctx *c = af__write_ctx_new(rq, rs, NULL);
    if (!c)
        return 0;
    c->u.alert_id = id;
    af_store_op op = {.kind = AF_STORE_ALERT_ACK};
    op.u.alert.id = id;
    return af__commit(rq, rs, &op, apply_alert_resolve, c, af__write_ctx_free);
}

int af__h_alerts_summary(af__req *rq, af__resp *rs)
{
    af_gpu_alert *al = malloc(sizeof(*al) * MAX_ALERTS);
    if (!al) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af__active_alerts(rq->srv, al, MAX_ALERTS);
    size_t by[3] = {0};
    for (size_t i = 0; i < n; i++)
        by[al[i].severity <= AF_GPU_CRITICAL ? al[i].severity : 0]++;
    af_buf *b = &rs->body;
    af__buf_printf(b,
                   "{\"total_alerts\":%zu,\"critical_count\":%zu,\"warning_count\":%zu,"
                   "\"info_count\":%zu,\"recent_alerts\":[",
                   n, by[AF_GPU_CRITICAL], by[AF_GPU_WARNING], by[AF_GPU_HEALTHY]);
    for (size_t i = 0; i < n && i < 5; i++) {
        if (i)
            af__buf_putc(b, ',');
        af__put_alert(b, &al[i]);
    }
    af__buf_puts(b, "],\"top_sources\":[");
    /* Count per source (GPU), in order of first appearance. */
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        bool earlier = false;
        for (size_t k = 0; k < i && !earlier; k++)
            earlier = strcmp(al[k].gpu_id, al[i].gpu_id) == 0;
        if (earlier)
            continue;
        size_t c = 0;
        for (size_t k = i; k < n; k++)
            c += strcmp(al[k].gpu_id, al[i].gpu_id) == 0;
        if (!first)
            af__buf_putc(b, ',');
        first = false;
        af__buf_puts(b, "{\"source\":");
        af__put_str(b, al[i].gpu_id);
        af__buf_printf(b, ",\"count\":%zu}", c);
    }
    af__buf_puts(b, "]}");
    free(al);
    return 0;
}
