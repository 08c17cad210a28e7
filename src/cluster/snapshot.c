/* Snapshot / restore: the whole state as plain values for a durable store. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_core.h"
#include "util/str.h"

/* ---------------------------------------------------------------------------------------- */
/* Snapshot / restore.                                                                       */

void af_cluster_state_free(af_cluster_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_nodes; i++) {
        for (size_t j = 0; j < st->nodes[i].n_gpus; j++)
            free(st->nodes[i].gpus[j].procs);
        free(st->nodes[i].gpus);
    }
    free(st->nodes);
    free(st->holds);
    memset(st, 0, sizeof(*st));
}

int af_cluster_snapshot(af_cluster *c, af_cluster_state *out)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    out->nodes = c->n_nodes ? calloc(c->n_nodes, sizeof(*out->nodes)) : NULL;
    out->holds = c->n_holds ? calloc(c->n_holds, sizeof(*out->holds)) : NULL;
    if ((c->n_nodes && !out->nodes) || (c->n_holds && !out->holds)) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        const node *n = &c->nodes[i];
        af_cluster_node_state *s = &out->nodes[i];
        out->n_nodes = i + 1;
        memcpy(s->name, n->name, sizeof(s->name));
        s->last_report_ns = n->last_report_ns;
        s->gpus = n->n_gpus ? calloc(n->n_gpus, sizeof(*s->gpus)) : NULL;
        if (n->n_gpus && !s->gpus) {
            rc = -ENOMEM;
            goto done;
        }
        s->n_gpus = n->n_gpus;
        for (size_t j = 0; j < n->n_gpus; j++) {
            s->gpus[j] = n->gpus[j].g;
            s->gpus[j].procs = NULL;
            if (!n->gpus[j].g.n_procs)
                continue;
            size_t sz = n->gpus[j].g.n_procs * sizeof(af_gpu_process);
            if (!(s->gpus[j].procs = malloc(sz))) {
                s->gpus[j].n_procs = 0;
                rc = -ENOMEM;
                goto done;
            }
            memcpy(s->gpus[j].procs, n->gpus[j].g.procs, sz);
        }
    }
    for (size_t i = 0; i < c->n_holds; i++)
        af__cl_hold_state(c, &c->holds[i], &out->holds[i]);
    out->n_holds = c->n_holds;
    out->rr_cursor = c->rr_started ? c->rr_cursor : UINT32_MAX;
done:
    pthread_mutex_unlock(&c->mu);
    if (rc)
        af_cluster_state_free(out);
    return rc;
}

int af_cluster_restore(af_cluster *c, const af_cluster_state *st, char *err, size_t err_len)
{
    if (!c || !st)
        return -EINVAL;
    if (st->n_nodes > c->o.max_nodes) {
        af__cluster_err(err, err_len, "nodes: %zu, more than cluster.max_nodes (%u)", st->n_nodes,
                        c->o.max_nodes);
        return -EINVAL;
    }
    /* Build a fresh cluster, then swap, so a bad entry leaves the current state alone. */
    af_cluster *tmp = NULL;
    int rc = af_cluster_new(&c->o, &tmp);
    if (rc)
        return rc;
    for (size_t i = 0; i < st->n_nodes && rc == 0; i++) {
        const af_cluster_node_state *s = &st->nodes[i];
        af_cluster_report r = {s->name, s->gpus, s->n_gpus};
        char why[160] = "";
        if ((rc = af_cluster_report_nodes(tmp, &r, why, sizeof(why))) != 0) {
            af__cluster_err(err, err_len, "nodes[%zu].%s", i, why);
            break;
        }
        /* Its samples are as old as the snapshot: ready again only when its agent reports. */
        node *n = &tmp->nodes[tmp->n_nodes - 1];
        n->last_report_ns = s->last_report_ns;
        n->awaiting_report = true;
        for (size_t j = 0; j < n->n_gpus; j++)
            n->gpus[j].g.reported_ns = s->last_report_ns;
    }
    for (size_t i = 0; i < st->n_holds && rc == 0; i++) {
        const af_cluster_hold_state *s = &st->holds[i];
        node *n = af__cl_find_node(tmp, s->node);
        if (!n || (n->n_gpus < 64 && (s->gpu_mask >> n->n_gpus))) {
            af__cluster_err(err, err_len, "holds[%zu].node: %s is not a node with those GPUs", i,
                            s->node);
            rc = -EINVAL;
            break;
        }
        hold h = {.node = (uint32_t)(n - tmp->nodes),
                  .mask = s->gpu_mask,
                  .memory_mb = s->memory_mb,
                  .expires_ns = s->expires_ns,
                  .bound = s->bound};
        af__strlcpy(h.key, s->pod_uid, sizeof(h.key));
        af__strlcpy(h.pod, s->pod, sizeof(h.pod));
        rc = af__cl_add_hold(tmp, &h);
    }
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        af__cl_clear_locked(c);
        c->nodes = tmp->nodes;
        c->n_nodes = tmp->n_nodes;
        c->cap_nodes = tmp->cap_nodes;
        c->map = tmp->map;
        c->map_cap = tmp->map_cap;
        c->holds = tmp->holds;
        c->n_holds = tmp->n_holds;
        c->cap_holds = tmp->cap_holds;
        c->rr_started = st->rr_cursor != UINT32_MAX && st->rr_cursor < tmp->n_nodes;
        c->rr_cursor = c->rr_started ? st->rr_cursor : 0;
        pthread_mutex_unlock(&c->mu);
        tmp->nodes = NULL;
        tmp->map = NULL;
        tmp->holds = NULL;
        tmp->n_nodes = tmp->n_holds = 0;
    }
    af_cluster_free(tmp);
    return rc;
}
