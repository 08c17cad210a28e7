/*
 * libFuzzer target for af_traceparent_parse: arbitrary bytes must never crash, and whatever
 * parses must format to a value that parses back to the same ids and flags.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agentaflow/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_span_context sc, again;
    af_span_context_init(&sc);
    if (af_traceparent_parse((const char *)data, size, &sc) != 0)
        return 0;
    if (!af_span_context_is_valid(&sc) || !sc.is_remote || (sc.trace_flags & ~0x03u) ||
        sc.trace_state_len != 0)
        __builtin_trap();
    char out[56];
    af_traceparent_format(&sc, out);
    if (strlen(out) != 55 || af_traceparent_parse(out, 55, &again) != 0)
        __builtin_trap();
    if (memcmp(sc.trace_id, again.trace_id, 16) || memcmp(sc.span_id, again.span_id, 8) ||
        sc.trace_flags != again.trace_flags)
        __builtin_trap();
    /* A version-00 input that survived with only known flag bits is already canonical. */
    if (size == 55 && data[0] == '0' && data[1] == '0' && (data[54] - '0') == sc.trace_flags &&
        data[53] == '0' && memcmp(out, data, 55) != 0)
        __builtin_trap();
    return 0;
}
