/*
 * Handlers: workloads (list, submit, get, complete, cancel) and the scheduling pass.
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

static void put_workload(af_buf *b, const af_workload_info *w)
{
    af__buf_puts(b, "{\"id\":");
    af__put_str(b, w->id);
    af__buf_puts(b, ",\"name\":");
    af__put_str(b, w->name);
    af__buf_printf(b,
                   ",\"priority\":%d,\"memory_required_mb\":%llu,\"estimated_time_ms\":%llu,"
                   "\"exclusive\":%s,\"status\":\"%s\",\"assigned_gpu\":",
                   w->priority, (unsigned long long)w->memory_required_mb,
                   (unsigned long long)w->estimated_time_ms, w->exclusive ? "true" : "false",
                   af_workload_status_name(w->status));
    if (w->assigned_gpu[0])
        af__put_str(b, w->assigned_gpu);
    else
        af__buf_puts(b, "null");
    af__buf_puts(b, ",\"submitted_at\":");
    af__put_time(b, w->submitted_ns);
    af__buf_puts(b, ",\"started_at\":");
    af__put_time(b, w->started_ns);
    af__buf_puts(b, ",\"completed_at\":");
    af__put_time(b, w->completed_ns);
    af__buf_printf(b, ",\"queue_wait_ms\":%llu,\"pending_reason\":\"%s\"",
                   (unsigned long long)w->queue_wait_ms, af_pending_reason_name(w->pending_reason));
    if (w->failure[0]) {
        af__buf_puts(b, ",\"failure\":");
        af__put_str(b, w->failure);
    }
    af__buf_putc(b, '}');
}

int af__schedule_pass(af_server *s)
{
    if (!s->o.scheduler)
        return 0;
    af_span_context sc;
    af_context_current(&sc);
    uint64_t t0 = af_monotonic_ns();
    size_t placed = 0;
    af_gpu_scheduler_schedule(s->o.scheduler, &placed);
    double secs = (double)(af_monotonic_ns() - t0) / 1e9;
    af_gpu_utilization u;
    memset(&u, 0, sizeof(u));
    size_t pending = 0;
    /* Queue-time observations for what was just placed. */
    enum { CAP = 512 };
    af_workload_info *w = placed ? malloc(sizeof(*w) * CAP) : NULL;
    size_t n = w ? af_gpu_scheduler_list_workloads(s->o.scheduler, w, CAP) : 0;
    if (n > CAP)
        n = CAP;
    uint64_t since = af_now_ns() - (uint64_t)(secs * 1e9) - 1000000ull;
    for (size_t i = 0; i < n; i++) {
        if (w[i].status == AF_WORKLOAD_PENDING)
            pending++;
        else if (w[i].status == AF_WORKLOAD_RUNNING && w[i].started_ns >= since)
            af__metrics_workload(s, w[i].priority, AF_WORKLOAD_RUNNING, &w[i], &sc);
    }
    free(w);
    af__metrics_schedule(s, af_gpu_scheduler_strategy(s->o.scheduler), secs, placed, pending, &sc);
    if (placed)
        af__system_update(s, "workloads_scheduled", NULL);
    return (int)placed;
}

int af__h_workloads(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    /* Every live workload: sized by the count, so nothing is cut silently. */
    size_t cap = af_gpu_scheduler_list_workloads(s->o.scheduler, NULL, 0) + 1;
    af_workload_info *w = malloc(sizeof(*w) * cap);
    if (!w) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    size_t n = af_gpu_scheduler_list_workloads(s->o.scheduler, w, cap);
    size_t shown = n > cap ? cap : n;
    af_buf *b = &rs->body;
    af__buf_puts(b, "{\"workloads\":[");
    size_t pending = 0, running = 0;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            af__buf_putc(b, ',');
        put_workload(b, &w[i]);
        pending += w[i].status == AF_WORKLOAD_PENDING;
        running += w[i].status == AF_WORKLOAD_RUNNING;
    }
    af__buf_printf(b, "],\"total\":%zu,\"pending\":%zu,\"running\":%zu,\"strategy\":\"%s\"}", n,
                   pending, running,
                   af_gpu_strategy_name(af_gpu_scheduler_strategy(s->o.scheduler)));
    free(w);
    return 0;
}

/* A workload's state as a store write. */
static void workload_op(const af_workload_info *w, af_store_op_kind k, af_store_op *op)
{
    memset(op, 0, sizeof(*op));
    op->kind = k;
    op->u.workload = (af_store_workload){.id = w->id,
                                         .name = w->name,
                                         .priority = w->priority,
                                         .memory_mb = w->memory_required_mb,
                                         .estimated_ms = w->estimated_time_ms,
                                         .exclusive = w->exclusive,
                                         .status = (int)w->status,
                                         .pending_reason = (int)w->pending_reason,
                                         .assigned_gpu = w->assigned_gpu,
                                         .failure = w->failure,
                                         .submitted_ns = w->submitted_ns,
                                         .started_ns = w->started_ns,
                                         .completed_ns = w->completed_ns};
}

/* After a change was committed but refused in memory (two requests raced): the saved row
 * goes back to what memory holds. */
static void resave_workload(af_server *s, const char *id)
{
    af_workload_info wi;
    if (!s->o.store || af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0)
        return;
    af_store_op op;
    workload_op(&wi, AF_STORE_WORKLOAD, &op);
    af_store_submit(s->o.store, &op, NULL, NULL);
}

static void apply_workload_submit(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    const af_workload_spec *w = &c->u.wl;
    char err[256] = "";
    int rc = af_gpu_scheduler_submit(s->o.scheduler, w, err, sizeof(err));
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        if (rc == -EEXIST)
            resave_workload(s, w->id);
        return;
    }
    af_workload_info wi;
    af__metrics_workload(s, w->priority, AF_WORKLOAD_PENDING, NULL, &c->parent);
    af__schedule_pass(s);
    af__system_update(s, "workload_submitted", w->id);
    if (af_gpu_scheduler_get_workload(s->o.scheduler, w->id, &wi) == 0) {
        rs->status = 201;
        put_workload(&rs->body, &wi);
    }
}

int af__h_workload_submit(af__req *rq, af__resp *rs)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    json_t *o = af__parse_object(rq, rs);
    if (!o)
        return 0;
    int arc = 0;
    af_workload_spec w = {0};
    double prio = 0, mem = 0, est = 0;
    char idbuf[48];
    if (af__get_field(o, AF__F_WORKLOAD_ID, &w.id, rs) &&
        af__get_field(o, AF__F_WORKLOAD_NAME, &w.name, rs) &&
        af__get_num(o, "priority", -1000000, 1000000, &prio, rs) &&
        af__get_num(o, "memory_required_mb", 0, 1e9, &mem, rs) &&
        af__get_num(o, "estimated_time_ms", 0, 1e12, &est, rs) &&
        af__get_bool(o, "exclusive", &w.exclusive, rs)) {
        if (!w.id || !*w.id) {
            static atomic_ulong seq;
            snprintf(idbuf, sizeof(idbuf), "wl-%llu-%lu",
                     (unsigned long long)(af_now_ns() / 1000000000ull),
                     (unsigned long)atomic_fetch_add(&seq, 1) + 1);
            w.id = idbuf;
        }
        w.priority = (int32_t)prio;
        w.memory_required_mb = (uint64_t)mem;
        w.estimated_time_ms = (uint64_t)est;
        af_workload_info live;
        write_ctx *c;
        /* The scheduler's own checks, before the commit, in its words. */
        if (strlen(w.id) >= AF_GPU_ID_MAX) {
            af__resp_error(rs, 400, "invalid_argument", "workload ID is too long");
        } else if (!w.memory_required_mb) {
            af__resp_error(rs, 400, "invalid_argument",
                           "workload memory requirement must be greater than 0");
        } else if (af_gpu_scheduler_get_workload(s->o.scheduler, w.id, &live) == 0 &&
                   (live.status == AF_WORKLOAD_PENDING || live.status == AF_WORKLOAD_RUNNING)) {
            af__resp_error(rs, 409, "conflict", "workload %s already exists", w.id);
        } else if ((c = af__write_ctx_new(rq, rs, o))) {
            if (w.id == idbuf) {
                af__strlcpy(c->id, idbuf, sizeof(c->id));
                w.id = c->id;
            }
            c->u.wl = w;
            af_workload_info wi;
            memset(&wi, 0, sizeof(wi));
            af__strlcpy(wi.id, w.id, sizeof(wi.id));
            af__strlcpy(wi.name, w.name ? w.name : "", sizeof(wi.name));
            wi.priority = w.priority;
            wi.memory_required_mb = w.memory_required_mb;
            wi.estimated_time_ms = w.estimated_time_ms;
            wi.exclusive = w.exclusive;
            wi.status = AF_WORKLOAD_PENDING;
            wi.pending_reason = AF_PENDING_NOT_YET_SCHEDULED;
            wi.submitted_ns = af_now_ns();
            af_store_op op;
            workload_op(&wi, AF_STORE_WORKLOAD_NEW, &op);
            arc = af__commit(rq, rs, &op, apply_workload_submit, c, af__write_ctx_free);
        }
    }
    json_decref(o);
    return arc;
}

int af__h_workload_get(af__req *rq, af__resp *rs)
{
    if (!af__component_present(rs, rq->srv->o.scheduler, "GPU scheduler"))
        return 0;
    af_workload_info wi;
    if (af_gpu_scheduler_get_workload(rq->srv->o.scheduler, rq->params[0], &wi) != 0) {
        af__resp_error(rs, 404, "not_found", "workload %s not found", rq->params[0]);
        return 0;
    }
    put_workload(&rs->body, &wi);
    return 0;
}

static void apply_workload_transition(af_server *s, void *ctx, af__resp *rs)
{
    write_ctx *c = ctx;
    bool complete = c->u.complete;
    const char *id = c->id;
    char err[256] = "";
    af_workload_info before;
    bool had = af_gpu_scheduler_get_workload(s->o.scheduler, id, &before) == 0;
    int rc = complete ? af_gpu_scheduler_complete(s->o.scheduler, id, err, sizeof(err))
                      : af_gpu_scheduler_cancel(s->o.scheduler, id, err, sizeof(err));
    if (rc != 0) {
        af__resp_from_errno(rs, rc, err);
        resave_workload(s, id);
        return;
    }
    af_workload_info wi;
    if (af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0)
        wi = before;
    if (had)
        af__metrics_workload(s, wi.priority,
                             complete ? AF_WORKLOAD_COMPLETED : AF_WORKLOAD_CANCELLED, &wi,
                             &c->parent);
    af__schedule_pass(s);
    af__system_update(s, complete ? "workload_completed" : "workload_cancelled", id);
    put_workload(&rs->body, &wi);
}

static int workload_transition(af__req *rq, af__resp *rs, bool complete)
{
    af_server *s = rq->srv;
    if (!af__component_present(rs, s->o.scheduler, "GPU scheduler"))
        return 0;
    const char *id = rq->params[0];
    af_workload_info wi;
    /* The scheduler's own checks, before the commit, in its words. */
    if (af_gpu_scheduler_get_workload(s->o.scheduler, id, &wi) != 0) {
        af__resp_error(rs, 404, "not_found", "workload %s not found", id);
        return 0;
    }
    bool ok = wi.status == AF_WORKLOAD_RUNNING || (!complete && wi.status == AF_WORKLOAD_PENDING);
    if (!ok) {
        af__resp_error(rs, 400, "invalid_argument", "workload %s is %s", id,
                       af_workload_status_name(wi.status));
        return 0;
    }
    write_ctx *c = af__write_ctx_new(rq, rs, NULL);
    if (!c)
        return 0;
    af__strlcpy(c->id, id, sizeof(c->id));
    c->u.complete = complete;
    wi.status = complete ? AF_WORKLOAD_COMPLETED : AF_WORKLOAD_CANCELLED;
    wi.pending_reason = AF_PENDING_NONE;
    wi.completed_ns = af_now_ns();
    af_store_op op;
    workload_op(&wi, AF_STORE_WORKLOAD, &op);
    return af__commit(rq, rs, &op, apply_workload_transition, c, af__write_ctx_free);
}

int af__h_workload_complete(af__req *rq, af__resp *rs)
{
    return workload_transition(rq, rs, true);
}

int af__h_workload_cancel(af__req *rq, af__resp *rs)
{
    return workload_transition(rq, rs, false);
}
