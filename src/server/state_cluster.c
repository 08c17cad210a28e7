/*
 * The cluster scheduler's durable state (docs/durability.md, docs/cluster.md).
 *
 * Agent reports are not written one by one: 1,000 nodes reporting every 5 s would be 200
 * writes a second for samples that are stale after a restart anyway. The inventory is
 * checkpointed instead, by a thread of its own, when a node joins or changes its GPU count
 * and once a minute, as one fire-and-forget write per node (a group commit takes them all in
 * one transaction). Reservations and bindings are what must not be lost (they prevent
 * double booking); the extender routes commit those before they answer.
 */
#define AF_LOG_COMPONENT "state"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/state_cluster.h"
#include "util/str.h"
#include "util/timeutil.h"

/* ---------------------------------------------------------------------------------------- */
/* Restore.                                                                                  */

int af__cluster_restore_node(const af_store_cluster_node *n, void *user)
{
    af__cluster_restore *r = user;
    af_cluster_state *cs = &r->cs;
    if (cs->n_nodes == r->cap_nodes) {
        size_t cap = r->cap_nodes ? r->cap_nodes * 2 : 64;
        af_cluster_node_state *nn = realloc(cs->nodes, cap * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        cs->nodes = nn;
        r->cap_nodes = cap;
    }
    char why[160] = "";
    int rc = af_cluster_node_state_parse(n->inventory, strlen(n->inventory), n->last_report_ns,
                                         &cs->nodes[cs->n_nodes], why, sizeof(why));
    if (rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        if (!r->skipped++)
            snprintf(r->first_error, sizeof(r->first_error), "node %.60s: %.90s", n->name, why);
        return 0;
    }
    cs->n_nodes++;
    return 0;
}

int af__cluster_restore_hold(const af_store_cluster_hold *h, void *user)
{
    af__cluster_restore *r = user;
    af_cluster_state *cs = &r->cs;
    if (cs->n_holds == r->cap_holds) {
        size_t cap = r->cap_holds ? r->cap_holds * 2 : 64;
        af_cluster_hold_state *nh = realloc(cs->holds, cap * sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        cs->holds = nh;
        r->cap_holds = cap;
    }
    af_cluster_hold_state *o = &cs->holds[cs->n_holds++];
    memset(o, 0, sizeof(*o));
    af__strlcpy(o->pod_uid, h->key, sizeof(o->pod_uid));
    af__strlcpy(o->pod, h->pod, sizeof(o->pod));
    af__strlcpy(o->node, h->node, sizeof(o->node));
    o->gpu_mask = h->gpu_mask;
    o->memory_mb = h->memory_mb;
    o->expires_ns = h->expires_ns;
    o->bound = h->bound;
    return 0;
}

void af__cluster_restore_cursor(af__cluster_restore *r, const char *value)
{
    unsigned long long v = strtoull(value, NULL, 10);
    r->cs.rr_cursor = v < UINT32_MAX ? (uint32_t)v : UINT32_MAX;
}

/* Drops holds on nodes the load did not bring back (a checkpoint older than the hold). */
static void drop_orphan_holds(af__cluster_restore *r)
{
    af_cluster_state *cs = &r->cs;
    size_t kept = 0;
    for (size_t i = 0; i < cs->n_holds; i++) {
        bool known = false;
        for (size_t k = 0; k < cs->n_nodes && !known; k++)
            known = strcmp(cs->nodes[k].name, cs->holds[i].node) == 0;
        if (known)
            cs->holds[kept++] = cs->holds[i];
        else
            r->skipped++;
    }
    cs->n_holds = kept;
}

size_t af__cluster_restore_finish(af__cluster_restore *r, af_cluster *c)
{
    drop_orphan_holds(r);
    char err[256] = "";
    size_t n = r->cs.n_nodes;
    int rc = af_cluster_restore(c, &r->cs, err, sizeof(err));
    if (rc == -EINVAL) {
        af_log(AF_LOG_WARN, "cluster: saved reservations refused (%s); restoring the nodes only",
               err);
        r->skipped += r->cs.n_holds;
        r->cs.n_holds = 0;
        rc = af_cluster_restore(c, &r->cs, err, sizeof(err));
    }
    if (rc != 0) {
        af_log(AF_LOG_ERROR, "cluster: the saved inventory was refused (%s); starting empty",
               err[0] ? err : af_strerror(rc));
        n = 0;
    }
    if (r->skipped)
        af_log(AF_LOG_WARN, "cluster: %llu saved rows skipped%s%s", (unsigned long long)r->skipped,
               r->first_error[0] ? "; first: " : "", r->first_error);
    af_log(AF_LOG_INFO,
           "cluster: restored %zu nodes (not ready until their agents report) and %zu "
           "reservations",
           n, n ? r->cs.n_holds : 0);
    af_cluster_state_free(&r->cs);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Checkpoints.                                                                              */

struct af__cluster_ckpt {
    af_store *store;
    af_cluster *cluster;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* Queues every node's inventory and the round-robin cursor. */
static void checkpoint(af__cluster_ckpt *k)
{
    af_cluster_state cs;
    int rc = af_cluster_snapshot(k->cluster, &cs);
    if (rc != 0) {
        af_log(AF_LOG_WARN, "cluster: no inventory checkpoint: %s", af_strerror(rc));
        return;
    }
    for (size_t i = 0; rc == 0 && i < cs.n_nodes; i++) {
        const af_cluster_node_state *n = &cs.nodes[i];
        af_cluster_report rep = {n->name, n->gpus, n->n_gpus};
        char *body = NULL;
        if ((rc = af_cluster_report_body(&rep, &body)) != 0)
            break;
        af_store_op op = {.kind = AF_STORE_CLUSTER_NODE};
        op.u.cluster_node = (af_store_cluster_node){n->name, n->last_report_ns, body};
        rc = af_store_submit(k->store, &op, NULL, NULL);
        free(body);
    }
    if (rc == 0) {
        char v[16];
        snprintf(v, sizeof(v), "%u", cs.rr_cursor);
        af_store_op op = {.kind = AF_STORE_KV};
        op.u.kv.key = AF__CLUSTER_KEY_RR;
        op.u.kv.value = v;
        rc = af_store_submit(k->store, &op, NULL, NULL);
    }
    af_cluster_state_free(&cs);
    /* The next checkpoint writes everything again: nothing is lost for good. */
    if (rc != 0)
        af_log(AF_LOG_WARN, "cluster: inventory checkpoint not queued: %s", af_strerror(rc));
}

static void *ckpt_main(void *arg)
{
    af__cluster_ckpt *k = arg;
    pthread_setname_np(pthread_self(), "af-cluster-ckpt");
    uint64_t seen = af_cluster_membership(k->cluster);
    uint64_t last = af_monotonic_ns();
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        uint64_t due = af_monotonic_ns() + 1000000000ull;
        struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        if (k->stop)
            break;
        uint64_t m = af_cluster_membership(k->cluster), now = af_monotonic_ns();
        if (m == seen && now - last < AF__CLUSTER_CKPT_MS * 1000000ull)
            continue;
        pthread_mutex_unlock(&k->mu);
        checkpoint(k);
        seen = m;
        last = now;
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

af__cluster_ckpt *af__cluster_ckpt_start(af_store *s, af_cluster *c)
{
    af__cluster_ckpt *k = calloc(1, sizeof(*k));
    if (!k) {
        af_log(AF_LOG_ERROR, "cluster: no inventory checkpoints: out of memory");
        return NULL;
    }
    k->store = s;
    k->cluster = c;
    pthread_mutex_init(&k->mu, NULL);
    af__cond_init_monotonic(&k->cv);
    int rc = pthread_create(&k->thread, NULL, ckpt_main, k);
    if (rc != 0) {
        af_log(AF_LOG_ERROR, "cluster: no inventory checkpoints: %s", strerror(rc));
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return NULL;
    }
    return k;
}

void af__cluster_ckpt_stop(af__cluster_ckpt *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    /* A stop (SIGTERM) saves the latest inventory: a restart then shows today's GPUs. */
    checkpoint(k);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}
