/*
 * libFuzzer target for the OTLP collector-response readers (export/otlp_response.c), which
 * parse network input without a JSON or protobuf library: arbitrary bytes must never crash or
 * read out of bounds, and the result is always a terminated, bounded message.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const af_otlp_response *r)
{
    if (memchr(r->error_message, '\0', sizeof(r->error_message)) == NULL)
        __builtin_trap();
    if (rc != 0 && rc != AF_EPARSE)
        __builtin_trap();
    if (!r->has_partial_success && (r->rejected_spans != 0 || r->error_message[0]))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    af_otlp_response r;
    check(af__otlp_json_decode_response((const char *)data, size, &r), &r);
    check(af__otlp_proto_decode_response(data, size, &r), &r);
    char msg[64];
    for (int json = 0; json < 2; json++) {
        af__otlp_decode_status_message(data, size, json, msg, sizeof(msg));
        if (memchr(msg, '\0', sizeof(msg)) == NULL)
            __builtin_trap();
    }
    return 0;
}
