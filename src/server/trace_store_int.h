/*
 * server/trace_store_int.h - what the exposition reads from the trace store.
 */
#ifndef AF_SERVER_TRACE_STORE_INT_H
#define AF_SERVER_TRACE_STORE_INT_H

#include "server/server_int.h"

/* Copies the export-latency histogram of the store's exporter. */
void af__trace_store_export_hist(af_trace_store *s, af__hist *out);

#endif
