/*
 * libFuzzer target for af_tracestate_set and the mutation functions. Invariants: a rejected
 * value leaves the context untouched; a stored value is at most AF_TRACE_STATE_MAX bytes,
 * NUL-terminated, and a fixed point (setting it again yields the same bytes); every stored
 * key can be looked up; put and delete keep those properties.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agentaflow/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_stored(const af_span_context *sc)
{
    if (sc->trace_state_len > AF_TRACE_STATE_MAX || sc->trace_state[sc->trace_state_len] != '\0' ||
        strlen(sc->trace_state) != sc->trace_state_len)
        __builtin_trap();
    af_span_context again;
    af_span_context_init(&again);
    if (af_tracestate_set(&again, sc->trace_state, sc->trace_state_len) != 0 ||
        again.trace_state_len != sc->trace_state_len ||
        memcmp(again.trace_state, sc->trace_state, sc->trace_state_len) != 0)
        __builtin_trap();
    /* Every member's key is found, with the value that follows it. */
    const char *p = sc->trace_state, *end = p + sc->trace_state_len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (!eq)
            __builtin_trap();
        char key[300], val[300];
        memcpy(key, p, (size_t)(eq - p));
        key[eq - p] = '\0';
        if (af_tracestate_get(sc, key, val, sizeof(val)) != (int)(stop - eq - 1) ||
            memcmp(val, eq + 1, (size_t)(stop - eq - 1)) != 0)
            __builtin_trap();
        p = stop + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_span_context sc, before;
    af_span_context_init(&sc);
    if (af_tracestate_put(&sc, "seed", "1") != 0)
        __builtin_trap();
    before = sc;
    if (af_tracestate_set(&sc, (const char *)data, size) != 0) {
        if (memcmp(&sc, &before, sizeof(sc)) != 0)
            __builtin_trap();
        return 0;
    }
    check_stored(&sc);

    /* Use the input's first bytes as a key and value for the mutation functions. */
    char key[64], value[64];
    size_t kl = size < 16 ? size : 16, vl = size > kl ? size - kl : 0;
    vl = vl < 32 ? vl : 32;
    memcpy(key, data, kl);
    key[kl] = '\0';
    memcpy(value, data + kl, vl);
    value[vl] = '\0';
    before = sc;
    int rc = af_tracestate_put(&sc, key, value);
    if (rc != 0) {
        if (memcmp(&sc, &before, sizeof(sc)) != 0)
            __builtin_trap();
    } else {
        char got[64];
        if (af_tracestate_get(&sc, key, got, sizeof(got)) != (int)strlen(value) ||
            strcmp(got, value) != 0 || strncmp(sc.trace_state, key, strlen(key)) != 0)
            __builtin_trap();
        check_stored(&sc);
        if (af_tracestate_delete(&sc, key) != 0 || af_tracestate_get(&sc, key, NULL, 0) != -1)
            __builtin_trap();
        check_stored(&sc);
    }
    return 0;
}
