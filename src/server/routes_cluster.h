/*
 * server/routes_cluster.h - the handlers of the cluster scheduler's routes (routes_cluster.c),
 * listed in the route table of routes.c.
 */
#ifndef AF_SERVER_ROUTES_CLUSTER_H
#define AF_SERVER_ROUTES_CLUSTER_H

#include "server/server_int.h"

int af__h_cluster_report(af__req *rq, af__resp *rs);
int af__h_cluster_nodes(af__req *rq, af__resp *rs);
int af__h_scheduler_filter(af__req *rq, af__resp *rs);
int af__h_scheduler_prioritize(af__req *rq, af__resp *rs);
int af__h_scheduler_bind(af__req *rq, af__resp *rs);

#endif
