/*
 * Span context value helpers and the names of span kinds and status codes.
 *
 * Everything here works on caller-owned values; nothing allocates, so every function is
 * safe from any thread.
 */
#include "agentaflow/trace.h"

#include <errno.h>
#include <string.h>

#include "util/str.h"

static const char hex_digits[] = "0123456789abcdef";

void af_span_context_init(af_span_context *sc)
{
    memset(sc, 0, sizeof(*sc));
}

static bool any_nonzero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc != 0;
}

bool af_span_context_is_valid(const af_span_context *sc)
{
    return sc && any_nonzero(sc->trace_id, sizeof(sc->trace_id)) &&
           any_nonzero(sc->span_id, sizeof(sc->span_id));
}

bool af_span_context_is_sampled(const af_span_context *sc)
{
    return sc && (sc->trace_flags & AF_TRACE_FLAG_SAMPLED) != 0;
}

static void to_hex(const uint8_t *id, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[id[i] >> 4];
        out[2 * i + 1] = hex_digits[id[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

void af_trace_id_to_hex(const uint8_t id[16], char out[33])
{
    to_hex(id, 16, out);
}

void af_span_id_to_hex(const uint8_t id[8], char out[17])
{
    to_hex(id, 8, out);
}

/* Decodes into a scratch array first so `out` is untouched when the input is rejected. */
static int from_hex(const char *hex, size_t len, uint8_t *out, size_t n)
{
    uint8_t tmp[16];
    if (!hex || len != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = af__hex_digit(hex[2 * i]);
        int lo = af__hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, n);
    return 0;
}

int af_trace_id_from_hex(const char *hex, size_t len, uint8_t out[16])
{
    return from_hex(hex, len, out, 16);
}

int af_span_id_from_hex(const char *hex, size_t len, uint8_t out[8])
{
    return from_hex(hex, len, out, 8);
}

const char *af_span_kind_name(af_span_kind kind)
{
    switch (kind) {
    case AF_SPAN_KIND_INTERNAL:
        return "internal";
    case AF_SPAN_KIND_SERVER:
        return "server";
    case AF_SPAN_KIND_CLIENT:
        return "client";
    case AF_SPAN_KIND_PRODUCER:
        return "producer";
    case AF_SPAN_KIND_CONSUMER:
        return "consumer";
    }
    /* 0 is OTLP's SPAN_KIND_UNSPECIFIED; anything else is out of range. */
    return (int)kind == 0 ? "unspecified" : "unknown";
}

const char *af_status_code_name(af_status_code code)
{
    switch (code) {
    case AF_STATUS_UNSET:
        return "UNSET";
    case AF_STATUS_OK:
        return "OK";
    case AF_STATUS_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}
