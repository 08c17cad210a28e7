/* The extender's decisions: filter, prioritize and bind, each a SERVER span. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "agentaflow/tracing.h"
#include "cluster/cluster_core.h"
#include "util/buf.h"
#include "util/str.h"

/* ---------------------------------------------------------------------------------------- */
/* Decisions.                                                                                */

typedef struct choice {
    bool fits;
    bool unresolvable; /* preempting pods would not help (no agent, not ready) */
    uint64_t mask;     /* GPUs chosen */
    double score;      /* 0-10 before round_robin */
    char reason[AF_CLUSTER_REASON_MAX];
} choice;

static bool wants_gpu(const af_cluster_pod *p)
{
    return p->gpus || p->memory_mb;
}

static af_gpu_strategy effective(af_gpu_strategy s, const af_cluster_pod *p)
{
    if (s == AF_GPU_PRIORITY)
        return p->priority > 0 ? AF_GPU_LEAST_UTILIZED : AF_GPU_BEST_FIT;
    return s;
}

static double clamp10(double v)
{
    return v < 0 ? 0 : v > 10 ? 10 : v;
}

/* What `own` (the pod's current hold, may be NULL) frees on GPU i of node ni. */
static void own_on(const hold *own, uint32_t ni, size_t i, uint64_t *mb, uint32_t *whole)
{
    *mb = 0;
    *whole = 0;
    if (!own || own->node != ni || !(own->mask & (1ull << i)))
        return;
    if (own->memory_mb)
        *mb = own->memory_mb;
    else
        *whole = 1;
}

/* Fills ch with why node n cannot take any pod now (not ready, or no GPUs); false if it can. */
static bool node_unusable(const af_cluster *c, const node *n, uint64_t now, choice *ch)
{
    if (!af__cl_node_ready(c, n, now)) {
        ch->unresolvable = true;
        if (n->awaiting_report)
            snprintf(ch->reason, sizeof(ch->reason),
                     "node not ready: the scheduler restarted and this node's agent has not "
                     "reported since");
        else
            snprintf(ch->reason, sizeof(ch->reason), "node not ready: no report for %llu s",
                     (unsigned long long)((now > n->last_report_ns ? now - n->last_report_ns : 0) /
                                          1000000000ull));
        return true;
    }
    if (!n->n_gpus) {
        ch->unresolvable = true;
        snprintf(ch->reason, sizeof(ch->reason), "the agent on this node reports no GPUs");
        return true;
    }
    return false;
}

/* A share of one GPU (p->memory_mb) on node n (slot ni): the tightest fit under best_fit,
 * else the least utilized GPU with room. */
static void eval_share(const node *n, uint32_t ni, const af_cluster_pod *p, const hold *own,
                       af_gpu_strategy st, choice *ch)
{
    int best = -1;
    uint64_t best_avail = 0, largest = 0;
    for (size_t i = 0; i < n->n_gpus; i++) {
        const gpu_slot *g = &n->gpus[i];
        uint64_t omb;
        uint32_t ow;
        own_on(own, ni, i, &omb, &ow);
        if (g->g.health == AF_GPU_CRITICAL || g->held_whole > ow)
            continue;
        uint64_t held = g->held_mb - omb;
        uint64_t avail = g->g.memory_free_mb > held ? g->g.memory_free_mb - held : 0;
        if (avail > largest)
            largest = avail;
        if (avail < p->memory_mb)
            continue;
        bool better;
        if (best < 0)
            better = true;
        else if (st == AF_GPU_BEST_FIT)
            better = avail < best_avail;
        else
            better = g->g.utilization < n->gpus[best].g.utilization;
        if (better) {
            best = (int)i;
            best_avail = avail;
        }
    }
    if (best < 0) {
        snprintf(ch->reason, sizeof(ch->reason),
                 "insufficient GPU memory: largest free %llu MiB < %llu MiB",
                 (unsigned long long)largest, (unsigned long long)p->memory_mb);
        return;
    }
    const af_cluster_gpu *g = &n->gpus[best].g;
    ch->fits = true;
    ch->mask = 1ull << best;
    if (st == AF_GPU_BEST_FIT)
        ch->score = 10.0 * (1.0 - (double)(best_avail - p->memory_mb) / (double)g->memory_total_mb);
    else
        ch->score = 10.0 * (1.0 - g->utilization / 100.0);
    ch->score = clamp10(ch->score);
}

/* The reason whole GPUs do not fit: the count, then the busy GPUs busy[0..nbusy) of node n by
 * their reports, as many as fit (the rest counted). Formatted only for a node that does not
 * fit, so a filter over a large fleet formats nothing for the nodes it keeps. */
static void whole_reason(const af_cluster *c, const node *n, const af_cluster_pod *p,
                         uint32_t nfree, const int *busy, uint32_t nbusy, choice *ch)
{
    char *out = ch->reason;
    size_t cap = sizeof(ch->reason);
    int len;
    if (p->memory_mb)
        len = snprintf(out, cap, "insufficient GPUs: %u free with %llu MiB < %u requested", nfree,
                       (unsigned long long)p->memory_mb, p->gpus);
    else
        len = snprintf(out, cap, "insufficient GPUs: %u free < %u requested", nfree, p->gpus);
    size_t used = len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
    uint32_t k = 0;
    for (; k < nbusy; k++) {
        char why[AF_CLUSTER_REASON_MAX];
        af__cl_gpu_busy(&c->o, &n->gpus[busy[k]].g, why, sizeof(why));
        /* Room is kept for the count of the ones left out (", and 64 more busy"). */
        if (used + 2 + strlen(why) + 20 >= cap)
            break;
        used += (size_t)snprintf(out + used, cap - used, "%s%s", k ? ", " : "; ", why);
    }
    if (k < nbusy)
        snprintf(out + used, cap - used, ", and %u more busy", nbusy - k);
}

/* Whole GPUs on node n (slot ni): pick p->gpus free ones, least utilized first. A GPU held for
 * another pod is taken; one whose report shows use is busy unless the pod holds it itself. */
static void eval_whole(const af_cluster *c, const node *n, uint32_t ni, const af_cluster_pod *p,
                       const hold *own, af_gpu_strategy st, choice *ch)
{
    uint32_t nfree = 0, nbusy = 0;
    int idx[AF_CLUSTER_GPUS_PER_NODE_MAX], busy[AF_CLUSTER_GPUS_PER_NODE_MAX];
    for (size_t i = 0; i < n->n_gpus; i++) {
        const gpu_slot *g = &n->gpus[i];
        uint64_t omb;
        uint32_t ow;
        own_on(own, ni, i, &omb, &ow);
        if (g->g.health == AF_GPU_CRITICAL || g->held_whole > ow || g->held_mb > omb ||
            g->g.memory_total_mb < p->memory_mb)
            continue;
        if (!ow && af__cl_gpu_busy(&c->o, &g->g, NULL, 0)) {
            busy[nbusy++] = (int)i;
            continue;
        }
        /* Insertion by utilization keeps the k least utilized in front. */
        uint32_t j = nfree++;
        while (j > 0 && n->gpus[idx[j - 1]].g.utilization > g->g.utilization) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = (int)i;
    }
    if (nfree < p->gpus) {
        whole_reason(c, n, p, nfree, busy, nbusy, ch);
        return;
    }
    ch->fits = true;
    double util = 0;
    for (uint32_t k = 0; k < p->gpus; k++) {
        ch->mask |= 1ull << idx[k];
        util += n->gpus[idx[k]].g.utilization;
    }
    if (st == AF_GPU_BEST_FIT)
        ch->score = 10.0 * (1.0 - (double)(nfree - p->gpus) / (double)n->n_gpus);
    else
        ch->score = 10.0 * (1.0 - util / p->gpus / 100.0);
    ch->score = clamp10(ch->score);
}

static void eval_node(const af_cluster *c, const node *n, const af_cluster_pod *p, const hold *own,
                      uint64_t now, af_gpu_strategy st, choice *ch)
{
    memset(ch, 0, sizeof(*ch));
    if (node_unusable(c, n, now, ch))
        return;
    uint32_t ni = (uint32_t)(n - c->nodes);
    if (!p->gpus)
        eval_share(n, ni, p, own, st, ch);
    else
        eval_whole(c, n, ni, p, own, st, ch);
}

static void eval_name(const af_cluster *c, const char *name, const af_cluster_pod *p,
                      const hold *own, uint64_t now, af_gpu_strategy st, choice *ch)
{
    const node *n = af__cl_find_node(c, name);
    if (!n) {
        memset(ch, 0, sizeof(*ch));
        ch->unresolvable = true;
        snprintf(ch->reason, sizeof(ch->reason), "no agentaflow agent on this node");
        return;
    }
    eval_node(c, n, p, own, now, st, ch);
}

/* "node/gpu-N" of every GPU in mask (bit = slot; N is the index the agent reported). */
void af__cl_gpu_ids(const node *n, uint64_t mask, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n->n_gpus && used < cap; i++)
        if (mask & (1ull << i))
            used += (size_t)snprintf(out + used, cap - used, "%s%s/gpu-%u", used ? "," : "",
                                     n->name, n->gpus[i].g.index);
}

/* ---------------------------------------------------------------------------------------- */
/* Spans.                                                                                    */

static af_span op_span(af_cluster *c, const char *name, const af_cluster_pod *p, size_t n)
{
    af_gpu_strategy st = af_cluster_strategy(c);
    af_tracer *t = c->o.tracing.tracing ? af_tracing_tracer_for(c->o.tracing.tracing,
                                                                AF_TRACE_GPU_SCHEDULING_DECISIONS)
                                        : c->o.tracing.tracer;
    if (!t)
        return AF_SPAN_NONE;
    af_span_context lctx;
    af_link link = {&lctx, NULL, 0};
    af_span_start_opts so = {.kind = AF_SPAN_KIND_SERVER};
    if (p->traceparent &&
        af_traceparent_parse(p->traceparent, strlen(p->traceparent), &lctx) == 0) {
        so.links = &link;
        so.n_links = 1;
    }
    af_span sp = af_span_start(t, name, &so);
    if (af_span_is_recording(sp))
        af_span_set_attrs(sp,
                          AF_ATTRS(AF_STR("k8s.namespace.name", p->namespace_ ? p->namespace_ : ""),
                                   AF_STR("k8s.pod.name", p->name ? p->name : ""),
                                   AF_STR("k8s.pod.uid", p->uid ? p->uid : ""),
                                   AF_INT("scheduler.candidate_count", n),
                                   AF_INT("gpu.request.count", p->gpus),
                                   AF_INT("gpu.request.memory_mb", p->memory_mb),
                                   AF_INT("workload.priority", p->priority),
                                   AF_STR("scheduler.strategy", af_gpu_strategy_name(st))));
    return sp;
}

/* ---------------------------------------------------------------------------------------- */

int af_cluster_filter(af_cluster *c, const af_cluster_pod *pod, const char *const *names, size_t n,
                      af_cluster_verdict *out)
{
    if (!c || !pod || (n && (!names || !out)))
        return -EINVAL;
    if (n > c->o.max_nodes)
        return -EINVAL;
    af_span sp = op_span(c, "gpu_scheduling.filter", pod, n);
    bool rec = af_span_is_recording(sp);
    if (!wants_gpu(pod)) {
        for (size_t i = 0; i < n; i++) {
            out[i].fits = true;
            out[i].unresolvable = false;
            out[i].reason[0] = '\0';
        }
        af_span_set_bool(sp, "scheduler.pass_through", true);
        af_operation_end(sp, 0, NULL, NULL);
        return (int)n;
    }
    char key[AF_CLUSTER_NODE_MAX];
    af_cluster_pod_key(pod, key, sizeof(key));
    int fit = 0;
    af_buf reasons;
    af__buf_init(&reasons);
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    const hold *own = af__cl_find_hold(c, key);
    af_gpu_strategy st = effective(c->o.strategy, pod);
    for (size_t i = 0; i < n; i++) {
        choice ch;
        eval_name(c, names[i], pod, own, now, st, &ch);
        out[i].fits = ch.fits;
        out[i].unresolvable = ch.unresolvable;
        memcpy(out[i].reason, ch.reason, sizeof(out[i].reason));
        fit += ch.fits;
        /* The span keeps the first reasons; a fleet's worth would only be truncated. */
        if (rec && !ch.fits && reasons.len < 2048)
            af__buf_printf(&reasons, "%s%s: %s", reasons.len ? "; " : "", names[i], ch.reason);
    }
    pthread_mutex_unlock(&c->mu);
    if (rec) {
        af_span_set_attrs(sp, AF_ATTRS(AF_INT("scheduler.feasible_nodes", fit),
                                       AF_INT("scheduler.failed_nodes", (int64_t)n - fit)));
        if (reasons.len)
            af_span_set_attrs(sp, AF_ATTRS(AF_STRN("scheduler.reasons", (const char *)reasons.data,
                                                   reasons.len)));
    }
    af__buf_clear(&reasons);
    af_operation_end(sp, 0, NULL, NULL);
    return fit;
}

/*
 * Scores every candidate 0-10 into scores (0 for a node without an agent or where the pod
 * does not fit) and returns the best one's position with its GPUs in *best_mask, or -1.
 * Under round_robin the score is the distance after the cursor in arrival order; the
 * caller raises the chosen node's to 10. Caller holds mu.
 */
static ssize_t score_nodes_locked(const af_cluster *c, const af_cluster_pod *pod,
                                  const char *const *names, size_t n, const hold *own, uint64_t now,
                                  af_gpu_strategy st, int64_t *scores, uint64_t *best_mask)
{
    bool rr = st == AF_GPU_ROUND_ROBIN;
    size_t total = c->n_nodes;
    ssize_t best = -1;
    uint64_t best_dist = UINT64_MAX;
    double best_score = -1;
    for (size_t i = 0; i < n; i++) {
        choice ch;
        const node *nd = af__cl_find_node(c, names[i]);
        if (!nd) {
            scores[i] = 0;
            continue;
        }
        eval_node(c, nd, pod, own, now, st, &ch);
        if (!ch.fits) {
            scores[i] = 0;
            continue;
        }
        if (rr) {
            /* Distance after the cursor in arrival order: the next node is 0. */
            size_t ord = (size_t)(nd - c->nodes);
            size_t start = c->rr_started ? (c->rr_cursor + 1) % total : 0;
            uint64_t d = (ord + total - start) % total;
            scores[i] = (int64_t)(9.0 * (double)(total - d) / (double)total);
            if (d < best_dist) {
                best_dist = d;
                best = (ssize_t)i;
                *best_mask = ch.mask;
            }
        } else {
            scores[i] = (int64_t)lround(ch.score);
            if (ch.score > best_score) {
                best_score = ch.score;
                best = (ssize_t)i;
                *best_mask = ch.mask;
            }
        }
    }
    return best;
}

/* Holds the GPUs in mask on nd for the pod (key), replacing its earlier hold, and moves the
 * round-robin cursor there when rr. 0 or -ENOMEM. Caller holds mu. */
static int hold_choice_locked(af_cluster *c, const af_cluster_pod *pod, const char *key,
                              const node *nd, uint64_t mask, uint64_t now, bool rr)
{
    uint32_t ni = (uint32_t)(nd - c->nodes);
    hold h = {.node = ni, .mask = mask, .memory_mb = pod->gpus ? 0 : pod->memory_mb};
    h.expires_ns = now + (uint64_t)c->o.reservation_ttl_ms * 1000000ull;
    af__strlcpy(h.key, key, sizeof(h.key));
    snprintf(h.pod, sizeof(h.pod), "%s/%s", pod->namespace_ ? pod->namespace_ : "",
             pod->name ? pod->name : "");
    hold *old = af__cl_find_hold(c, key);
    if (old)
        af__cl_hold_remove(c, (size_t)(old - c->holds));
    int rc = af__cl_add_hold(c, &h);
    if (rr && rc == 0) {
        c->rr_cursor = ni;
        c->rr_started = true;
    }
    return rc;
}

int af_cluster_prioritize(af_cluster *c, const af_cluster_pod *pod, const char *const *names,
                          size_t n, int64_t *scores, char *chosen_gpu, size_t chosen_len)
{
    if (!c || !pod || (n && (!names || !scores)))
        return -EINVAL;
    if (n > c->o.max_nodes)
        return -EINVAL;
    if (chosen_gpu && chosen_len)
        chosen_gpu[0] = '\0';
    af_span sp = op_span(c, "gpu_scheduling.prioritize", pod, n);
    if (!wants_gpu(pod)) {
        if (n) /* scores may be NULL when there are no candidates */
            memset(scores, 0, n * sizeof(*scores));
        af_span_set_bool(sp, "scheduler.pass_through", true);
        af_operation_end(sp, 0, NULL, NULL);
        return 0;
    }
    char key[AF_CLUSTER_NODE_MAX];
    af_cluster_pod_key(pod, key, sizeof(key));
    int rc = 0;
    char chosen[AF_GPU_ID_MAX] = "", node_name[AF_CLUSTER_NODE_MAX] = "";
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    const hold *own = af__cl_find_hold(c, key);
    af_gpu_strategy st = effective(c->o.strategy, pod);
    bool rr = st == AF_GPU_ROUND_ROBIN;
    uint64_t best_mask = 0;
    ssize_t best = score_nodes_locked(c, pod, names, n, own, now, st, scores, &best_mask);
    if (best >= 0) {
        if (rr)
            scores[best] = 10;
        const node *nd = af__cl_find_node(c, names[best]);
        rc = hold_choice_locked(c, pod, key, nd, best_mask, now, rr);
        af__strlcpy(node_name, nd->name, sizeof(node_name));
        af__cl_gpu_ids(nd, best_mask, chosen, sizeof(chosen));
    }
    pthread_mutex_unlock(&c->mu);
    if (chosen_gpu && chosen_len)
        af__strlcpy(chosen_gpu, chosen, chosen_len);
    af_span_set_attrs(
        sp, AF_ATTRS(AF_STR("scheduler.chosen_node", node_name), AF_STR("gpu.id", chosen)));
    af_operation_end(sp, rc, rc ? "ENOMEM" : NULL, rc ? "cannot hold the choice" : NULL);
    return rc;
}

int af_cluster_bind_begin(af_cluster *c, const af_cluster_pod *pod, const char *node_name,
                          char *gpu_out, size_t gpu_len, char *err, size_t err_len, af_span *span)
{
    if (span)
        *span = AF_SPAN_NONE;
    if (!c || !pod || !node_name || !span)
        return -EINVAL;
    if (gpu_out && gpu_len)
        gpu_out[0] = '\0';
    af_span sp = op_span(c, "gpu_scheduling.bind", pod, 1);
    *span = sp;
    af_span_set_string(sp, "scheduler.chosen_node", node_name);
    char key[AF_CLUSTER_NODE_MAX], ids[AF_GPU_ID_MAX] = "", why[AF_CLUSTER_REASON_MAX] = "";
    af_cluster_pod_key(pod, key, sizeof(key));
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    uint64_t now = c->o.clock(c->o.clock_user);
    af__cl_expire_locked(c, now);
    hold *old = af__cl_find_hold(c, key);
    /* ExtenderBindingArgs carry no resources: the pod's hold says what it asked for. */
    af_cluster_pod req = *pod;
    if (!wants_gpu(&req) && old) {
        req.memory_mb = old->memory_mb;
        req.gpus = old->memory_mb ? 0 : (uint32_t)__builtin_popcountll(old->mask);
    }
    if (!wants_gpu(&req)) {
        pthread_mutex_unlock(&c->mu);
        af_span_set_bool(sp, "scheduler.pass_through", true);
        return 0;
    }
    pod = &req;
    node *nd = af__cl_find_node(c, node_name);
    uint64_t expires = now + (uint64_t)c->o.reservation_ttl_ms * 1000000ull;
    if (!nd) {
        snprintf(why, sizeof(why), "no agentaflow agent on node %s", node_name);
        rc = -ENOENT;
    } else if (old && old->node == (uint32_t)(nd - c->nodes) && old->mask) {
        old->bound = true;
        old->expires_ns = expires;
        af__cl_gpu_ids(nd, old->mask, ids, sizeof(ids));
    } else {
        choice ch;
        eval_node(c, nd, pod, old, now, effective(c->o.strategy, pod), &ch);
        if (!ch.fits) {
            snprintf(why, sizeof(why), "%s", ch.reason);
            rc = -EAGAIN;
        } else {
            hold h = {.node = (uint32_t)(nd - c->nodes), .mask = ch.mask, .bound = true};
            h.memory_mb = pod->gpus ? 0 : pod->memory_mb;
            h.expires_ns = expires;
            af__strlcpy(h.key, key, sizeof(h.key));
            snprintf(h.pod, sizeof(h.pod), "%s/%s", pod->namespace_ ? pod->namespace_ : "",
                     pod->name ? pod->name : "");
            if (old)
                af__cl_hold_remove(c, (size_t)(old - c->holds));
            rc = af__cl_add_hold(c, &h);
            af__cl_gpu_ids(nd, ch.mask, ids, sizeof(ids));
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (gpu_out && gpu_len)
        af__strlcpy(gpu_out, ids, gpu_len);
    if (rc && why[0])
        af__cluster_err(err, err_len, "%s", why);
    af_span_set_string(sp, "gpu.id", ids);
    return rc;
}

void af_cluster_bind_end(af_span span, int rc, const char *why)
{
    if (why && why[0])
        af_span_set_string(span, "scheduler.reasons", why);
    af_operation_end(span, rc, rc ? af_strerror(rc) : NULL, rc && why && why[0] ? why : NULL);
}

int af_cluster_bind(af_cluster *c, const af_cluster_pod *pod, const char *node_name, char *gpu_out,
                    size_t gpu_len, char *err, size_t err_len)
{
    char why[AF_CLUSTER_REASON_MAX] = "";
    af_span sp;
    int rc = af_cluster_bind_begin(c, pod, node_name, gpu_out, gpu_len, why, sizeof(why), &sp);
    if (rc && why[0])
        af__cluster_err(err, err_len, "%s", why);
    af_cluster_bind_end(sp, rc, why); /* AF_SPAN_NONE after bad arguments: nothing */
    return rc;
}
