/*
 * libFuzzer target for af_baggage_parse: arbitrary bytes must never crash, the result must
 * respect the limits, and formatting it and parsing that again must give the same entries in
 * the same order (traps on any mismatch).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_baggage *b = NULL, *again = NULL;
    if (af_baggage_new(&b) != 0 || af_baggage_new(&again) != 0)
        __builtin_trap();
    int added = af_baggage_parse(b, (const char *)data, size);
    size_t n = af_baggage_count(b);
    if (added < 0 || (size_t)added < n || n > AF_BAGGAGE_MAX_MEMBERS)
        __builtin_trap();

    static char out[AF_BAGGAGE_MAX_BYTES + 1];
    size_t len = af_baggage_format(b, out, sizeof(out));
    if (len > AF_BAGGAGE_MAX_BYTES || strlen(out) != len)
        __builtin_trap();
    if (af_baggage_parse(again, out, len) != (int)n || af_baggage_count(again) != n)
        __builtin_trap();
    for (size_t i = 0; i < n; i++) {
        const char *k1, *v1, *m1, *k2, *v2, *m2;
        af_baggage_at(b, i, &k1, &v1, &m1);
        af_baggage_at(again, i, &k2, &v2, &m2);
        if (strcmp(k1, k2) || strcmp(v1, v2) || strcmp(m1, m2))
            __builtin_trap();
    }
    /* Formatting the re-parsed baggage is byte-identical (the encoding is canonical). */
    static char out2[AF_BAGGAGE_MAX_BYTES + 1];
    if (af_baggage_format(again, out2, sizeof(out2)) != len || memcmp(out, out2, len) != 0)
        __builtin_trap();
    af_baggage_free(again);
    af_baggage_free(b);
    return 0;
}
