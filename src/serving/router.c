/* Routing decisions among one model's instances (the original's Router, fixed: round_robin
 * rotates, and load is what the gateway has in flight, not a caller-maintained number). */
#include <errno.h>
#include <string.h>

#include "serving/serving_int.h"

const char *af_routing_strategy_name(af_routing_strategy s)
{
    switch (s) {
    case AF_ROUTE_LEAST_LATENCY:
        return "least_latency";
    case AF_ROUTE_LEAST_LOAD:
        return "least_load";
    case AF_ROUTE_ROUND_ROBIN:
    default:
        return "round_robin";
    }
}

int af_routing_strategy_parse(const char *name, af_routing_strategy *out)
{
    static const af_routing_strategy all[] = {AF_ROUTE_ROUND_ROBIN, AF_ROUTE_LEAST_LATENCY,
                                              AF_ROUTE_LEAST_LOAD};
    if (!name || !out)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, af_routing_strategy_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -EINVAL;
}

static bool fits(const af__route_inst *i, uint32_t need)
{
    return i->max_load == 0 || (uint64_t)i->load + need <= i->max_load;
}

int af__route_pick(af_routing_strategy strategy, size_t *cursor, const af__route_inst *inst,
                   size_t n, uint32_t need)
{
    size_t up = 0;
    for (size_t i = 0; i < n; i++)
        up += inst[i].available;
    if (up == 0)
        return -EHOSTDOWN;
    int best = -1;
    if (strategy == AF_ROUTE_ROUND_ROBIN) {
        /* Start after the previous pick so every eligible instance takes its turn. */
        for (size_t k = 0; k < n; k++) {
            size_t i = (*cursor + k) % n;
            if (inst[i].available && fits(&inst[i], need)) {
                best = (int)i;
                break;
            }
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!inst[i].available || !fits(&inst[i], need))
                continue;
            if (best < 0) {
                best = (int)i;
                continue;
            }
            const af__route_inst *b = &inst[best], *c = &inst[i];
            bool better;
            if (strategy == AF_ROUTE_LEAST_LOAD)
                better = c->load < b->load;
            else /* least_latency: an untried instance first, so every one gets measured */
                better =
                    (!c->has_latency && b->has_latency) ||
                    (c->has_latency && b->has_latency && c->avg_latency_ms < b->avg_latency_ms);
            if (better)
                best = (int)i;
        }
    }
    if (best < 0)
        return AF_EFULL;
    *cursor = ((size_t)best + 1) % n;
    return best;
}

void af__route_observe(af__route_inst *inst, double latency_ms)
{
    if (!(latency_ms >= 0))
        latency_ms = 0;
    if (!inst->has_latency) {
        inst->avg_latency_ms = latency_ms;
        inst->has_latency = true;
    } else {
        inst->avg_latency_ms = 0.8 * inst->avg_latency_ms + 0.2 * latency_ms;
    }
}
