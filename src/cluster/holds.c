/* Holds: what prioritize and bind reserve on a node's GPUs for a pod, until they expire. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_core.h"

/* ---------------------------------------------------------------------------------------- */
/* Holds.                                                                                    */

static void hold_apply(af_cluster *c, const hold *h, int sign)
{
    node *n = &c->nodes[h->node];
    for (size_t i = 0; i < n->n_gpus; i++) {
        if (!(h->mask & (1ull << i)))
            continue;
        if (h->memory_mb)
            n->gpus[i].held_mb += sign > 0 ? h->memory_mb : -h->memory_mb;
        else
            n->gpus[i].held_whole += sign > 0 ? 1u : (uint32_t)-1;
    }
}

void af__cl_hold_remove(af_cluster *c, size_t i)
{
    hold_apply(c, &c->holds[i], -1);
    c->holds[i] = c->holds[--c->n_holds];
}

void af__cl_expire_locked(af_cluster *c, uint64_t now)
{
    for (size_t i = 0; i < c->n_holds;)
        if (c->holds[i].expires_ns <= now)
            af__cl_hold_remove(c, i);
        else
            i++;
}

void af_cluster_pod_key(const af_cluster_pod *p, char *out, size_t cap)
{
    if (p->uid && *p->uid)
        snprintf(out, cap, "%s", p->uid);
    else
        snprintf(out, cap, "%s/%s", p->namespace_ ? p->namespace_ : "", p->name ? p->name : "");
}

hold *af__cl_find_hold(af_cluster *c, const char *key)
{
    for (size_t i = 0; i < c->n_holds; i++)
        if (strcmp(c->holds[i].key, key) == 0)
            return &c->holds[i];
    return NULL;
}

int af__cl_add_hold(af_cluster *c, const hold *h)
{
    if (c->n_holds == c->cap_holds) {
        size_t ncap = c->cap_holds ? c->cap_holds * 2 : 16;
        hold *nh = realloc(c->holds, ncap * sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        c->holds = nh;
        c->cap_holds = ncap;
    }
    c->holds[c->n_holds++] = *h;
    hold_apply(c, h, 1);
    return 0;
}

void af_cluster_release(af_cluster *c, const char *key)
{
    if (!c || !key)
        return;
    pthread_mutex_lock(&c->mu);
    hold *h = af__cl_find_hold(c, key);
    if (h)
        af__cl_hold_remove(c, (size_t)(h - c->holds));
    pthread_mutex_unlock(&c->mu);
}

void af__cl_hold_state(const af_cluster *c, const hold *h, af_cluster_hold_state *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->pod_uid, h->key, sizeof(out->pod_uid));
    memcpy(out->pod, h->pod, sizeof(out->pod));
    memcpy(out->node, c->nodes[h->node].name, sizeof(out->node));
    out->gpu_mask = h->mask;
    out->memory_mb = h->memory_mb;
    out->expires_ns = h->expires_ns;
    out->bound = h->bound;
}

int af_cluster_hold_get(af_cluster *c, const char *key, af_cluster_hold_state *out)
{
    if (!c || !key || !out)
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    af__cl_expire_locked(c, c->o.clock(c->o.clock_user));
    const hold *h = af__cl_find_hold(c, key);
    if (h)
        af__cl_hold_state(c, h, out);
    pthread_mutex_unlock(&c->mu);
    return h ? 0 : -ENOENT;
}
