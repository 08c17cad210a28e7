/*
 * W3C Trace Context `traceparent` parsing and formatting (Level 2 rules).
 *
 * This runs on every incoming and outgoing request, so it is a single pass over at most 55
 * bytes with a lookup table, no allocation and no library calls besides the id formatters.
 */
#include "agentaflow/propagation.h"

#include <string.h>

#define TP_LEN 55 /* "vv-" + 32 + "-" + 16 + "-" + "ff" */
#define TP_TRACE_OFF 3
#define TP_SPAN_OFF 36
#define TP_FLAGS_OFF 53

/* 0x10 | value of a lower-case hex digit; 0 (the default) marks "not a hex digit". W3C's
 * HEXDIGLC excludes 'A'-'F', which is why this does not reuse af_trace_id_from_hex (that one
 * accepts both cases). */
static const uint8_t lchex[256] = {
    ['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14, ['5'] = 0x15,
    ['6'] = 0x16, ['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19, ['a'] = 0x1a, ['b'] = 0x1b,
    ['c'] = 0x1c, ['d'] = 0x1d, ['e'] = 0x1e, ['f'] = 0x1f,
};
#define HEX_OK(v) ((v)&0x10)

/* Decodes n bytes of lower-case hex. Returns false on any other character. The bad-digit test
 * is folded into one accumulator so the loop has no early exit in the common (valid) case. */
static bool decode_lchex(const char *s, uint8_t *out, size_t n, uint8_t *nonzero)
{
    uint8_t all_ok = 0x10, any = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t hi = lchex[(unsigned char)s[2 * i]];
        uint8_t lo = lchex[(unsigned char)s[2 * i + 1]];
        all_ok &= hi & lo;
        uint8_t b = (uint8_t)((hi & 0x0f) << 4 | (lo & 0x0f));
        out[i] = b;
        any |= b;
    }
    *nonzero = any;
    return HEX_OK(all_ok) != 0;
}

int af_traceparent_parse(const char *value, size_t len, af_span_context *out)
{
    if (!value || !out || len < TP_LEN)
        return AF_EPARSE;
    if (value[2] != '-' || value[TP_SPAN_OFF - 1] != '-' || value[TP_FLAGS_OFF - 1] != '-')
        return AF_EPARSE;

    uint8_t version, flags, nz_trace, nz_span, unused;
    uint8_t trace_id[16], span_id[8];
    if (!decode_lchex(value, &version, 1, &unused) || version == 0xff)
        return AF_EPARSE;
    /* Version 00 is exactly 55 characters. A future version may append fields, but only after
     * a '-', so that "cc-...-01.x" is still rejected. */
    if (version == 0x00 ? len != TP_LEN : (len > TP_LEN && value[TP_LEN] != '-'))
        return AF_EPARSE;
    if (!decode_lchex(value + TP_TRACE_OFF, trace_id, 16, &nz_trace) || !nz_trace)
        return AF_EPARSE;
    if (!decode_lchex(value + TP_SPAN_OFF, span_id, 8, &nz_span) || !nz_span)
        return AF_EPARSE;
    if (!decode_lchex(value + TP_FLAGS_OFF, &flags, 1, &unused))
        return AF_EPARSE;

    memcpy(out->trace_id, trace_id, sizeof(trace_id));
    memcpy(out->span_id, span_id, sizeof(span_id));
    /* Only the flags this SDK understands survive: W3C says unknown bits must be zero when
     * we propagate, and the random bit must be kept as received. */
    out->trace_flags = flags & (AF_TRACE_FLAG_SAMPLED | AF_TRACE_FLAG_RANDOM);
    out->is_remote = true;
    out->trace_state_len = 0;
    out->trace_state[0] = '\0';
    return 0;
}

void af_traceparent_format(const af_span_context *sc, char out[56])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t flags = sc->trace_flags & (AF_TRACE_FLAG_SAMPLED | AF_TRACE_FLAG_RANDOM);
    out[0] = '0';
    out[1] = '0';
    out[2] = '-';
    /* Each helper writes its NUL where the next '-' goes; the '-' overwrites it. */
    af_trace_id_to_hex(sc->trace_id, out + TP_TRACE_OFF);
    out[TP_SPAN_OFF - 1] = '-';
    af_span_id_to_hex(sc->span_id, out + TP_SPAN_OFF);
    out[TP_FLAGS_OFF - 1] = '-';
    out[TP_FLAGS_OFF] = hex[flags >> 4];
    out[TP_FLAGS_OFF + 1] = hex[flags & 0x0f];
    out[TP_LEN] = '\0';
}
