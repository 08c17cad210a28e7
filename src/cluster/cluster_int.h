/*
 * cluster/cluster_int.h - what the files of src/cluster share: the pod request as parsed from
 * an ExtenderArgs body, and a bounded reason formatter. Nothing here locks.
 */
#ifndef AF_CLUSTER_INT_H
#define AF_CLUSTER_INT_H

#include <stdarg.h>

#include "agentaflow/cluster.h"

/* snprintf into an optional error buffer. */
void af__cluster_err(char *err, size_t err_len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The maximum candidate count of a request (the cluster's max_nodes). */
uint32_t af__cluster_max_nodes(af_cluster *c);

#endif
