/* The per-instance circuit breaker: closed -> (threshold failures in a row) open -> (after the
 * cool-down) half-open with one probe -> closed on its success, open again on its failure. */
#include "serving/serving_int.h"

const char *af__breaker_state_name(af__breaker_state s)
{
    switch (s) {
    case AF__BREAKER_OPEN:
        return "open";
    case AF__BREAKER_HALF_OPEN:
        return "half_open";
    case AF__BREAKER_CLOSED:
    default:
        return "closed";
    }
}

bool af__breaker_allows(const af__breaker *b, uint64_t now)
{
    switch (b->state) {
    case AF__BREAKER_OPEN:
        return now >= b->open_until;
    case AF__BREAKER_HALF_OPEN:
        return !b->probing;
    case AF__BREAKER_CLOSED:
    default:
        return true;
    }
}

void af__breaker_on_send(af__breaker *b, uint64_t now)
{
    if (b->state == AF__BREAKER_OPEN && now >= b->open_until)
        b->state = AF__BREAKER_HALF_OPEN;
    if (b->state == AF__BREAKER_HALF_OPEN)
        b->probing = true;
}

void af__breaker_on_result(af__breaker *b, bool ok, uint64_t now, uint32_t threshold,
                           uint64_t cooldown_ns)
{
    if (ok) {
        b->state = AF__BREAKER_CLOSED;
        b->consecutive_failures = 0;
        b->probing = false;
        return;
    }
    b->consecutive_failures++;
    bool was_probe = b->state == AF__BREAKER_HALF_OPEN;
    if (threshold && (was_probe || b->consecutive_failures >= threshold)) {
        b->state = AF__BREAKER_OPEN;
        b->open_until = now + cooldown_ns;
        b->probing = false;
    }
}
