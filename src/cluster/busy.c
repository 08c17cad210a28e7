/*
 * Whether a whole GPU is busy by its agent's latest report: a process on it, or memory used
 * above cluster.whole_gpu_busy_memory_mb (the driver's and a context's baseline stays under
 * it). Holds are the caller's business: a GPU agentaflow holds for another pod is taken
 * anyway, and one held by the asking pod itself is the pod's, busy or not (decide.c).
 */
#include <stdio.h>

#include "cluster/cluster_core.h"

/* n with thousands separators ("14,336"). out holds at least 27 bytes. */
static void group_digits(uint64_t n, char *out, size_t cap)
{
    char digits[21];
    int len = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)n);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i && (len - i) % 3 == 0 && o + 2 < cap)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

bool af__cl_gpu_busy(const af_cluster_opts *o, const af_cluster_gpu *g, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    if (!o->whole_gpu_reported_use)
        return false;
    bool by_memory = o->whole_gpu_busy_memory_mb && g->memory_used_mb > o->whole_gpu_busy_memory_mb;
    if (!g->n_procs && !by_memory)
        return false;
    if (why && cap) {
        char mb[32];
        group_digits(g->memory_used_mb, mb, sizeof(mb));
        if (g->n_procs)
            snprintf(why, cap, "gpu-%u busy (%u process%s, %s MiB used, not by agentaflow)",
                     g->index, g->n_procs, g->n_procs == 1 ? "" : "es", mb);
        else
            snprintf(why, cap, "gpu-%u busy (no process listed, %s MiB used, not by agentaflow)",
                     g->index, mb);
    }
    return true;
}
