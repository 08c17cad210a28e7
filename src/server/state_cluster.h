/*
 * server/state_cluster.h - the cluster scheduler's durable state (state_cluster.c): its
 * inventory checkpointed through the store, and the restore of inventory and reservations at
 * start. Reservations themselves are committed by the extender routes (routes_cluster.c)
 * before they answer.
 *
 * Threads: the restore functions run on the thread that loads the store (before its writer
 * starts); the checkpointer is one thread ("af-cluster-ckpt") that only snapshots the
 * cluster and queues writes.
 */
#ifndef AF_SERVER_STATE_CLUSTER_H
#define AF_SERVER_STATE_CLUSTER_H

#include "agentaflow/cluster.h"
#include "agentaflow/store.h"

/* The key the round-robin cursor of the fleet is kept under. */
#define AF__CLUSTER_KEY_RR "cluster.rr_cursor"

/* What a store load collects for the cluster. Zeroed by the caller. */
typedef struct af__cluster_restore {
    af_cluster_state cs;
    size_t cap_nodes, cap_holds;
    uint64_t skipped; /* rows that could not be read back */
    char first_error[160];
} af__cluster_restore;

/* af_store_load_cb.cluster_node / .cluster_hold (user = the af__cluster_restore). */
int af__cluster_restore_node(const af_store_cluster_node *n, void *user);
int af__cluster_restore_hold(const af_store_cluster_hold *h, void *user);
void af__cluster_restore_cursor(af__cluster_restore *r, const char *value);
/* Puts what was collected into c (nodes not ready until their agent reports; holds on nodes
 * that were not saved are dropped) and frees it. Returns the restored node count; a refused
 * state is logged and leaves c empty. */
size_t af__cluster_restore_finish(af__cluster_restore *r, af_cluster *c);

/* Checkpoints the inventory: at once, then whenever membership changes (checked every
 * second) and every AF__CLUSTER_CKPT_MS. NULL on failure (logged). */
#define AF__CLUSTER_CKPT_MS 60000u
typedef struct af__cluster_ckpt af__cluster_ckpt;
af__cluster_ckpt *af__cluster_ckpt_start(af_store *s, af_cluster *c);
/* A last checkpoint (the cluster must still exist), then joins the thread. NULL: no-op. */
void af__cluster_ckpt_stop(af__cluster_ckpt *k);

#endif
