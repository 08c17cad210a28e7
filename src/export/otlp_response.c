/*
 * Decoders for what an OTLP/HTTP collector answers: ExportTraceServiceResponse on 200
 * (partial success) and google.rpc.Status on errors, each in protobuf or JSON. Bodies come
 * from the network, so every malformed input is an AF_EPARSE (or an empty message), never a
 * crash.
 *
 * Both readers are written here rather than taken from protobuf-c and jansson: they read
 * three fields of two tiny messages, and the SDK library (libagentaflow) depends on libcurl,
 * zlib and libyaml only (docs/architecture.md). The protobuf-c generated code stays the unit
 * tests' oracle.
 */
#include "export/encode.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

static void response_clear(af_otlp_response *out)
{
    out->has_partial_success = false;
    out->rejected_spans = 0;
    out->error_message[0] = '\0';
}

/* ---- protobuf wire format ---------------------------------------------------------------- */

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

static int pb_varint(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return AF_EPARSE;
        uint8_t byte = *r->p++;
        v |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return AF_EPARSE; /* more than ten bytes */
}

/*
 * Reads the next field's tag; a length-delimited value is returned in *body (and skipped in r),
 * a varint in *varint; fixed-width values are skipped. Groups (wire types 3 and 4) and field
 * number 0 are malformed for these messages.
 */
static int pb_field(pb_reader *r, uint32_t *field, uint32_t *wire, uint64_t *varint,
                    pb_reader *body)
{
    uint64_t tag;
    if (pb_varint(r, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
        return AF_EPARSE;
    *field = (uint32_t)(tag >> 3);
    *wire = (uint32_t)(tag & 7);
    size_t skip;
    switch (*wire) {
    case 0:
        return pb_varint(r, varint);
    case 1:
        skip = 8;
        break;
    case 2: {
        uint64_t len;
        if (pb_varint(r, &len) != 0)
            return AF_EPARSE;
        if (len > (uint64_t)(r->end - r->p))
            return AF_EPARSE;
        skip = (size_t)len;
        body->p = r->p;
        body->end = r->p + skip;
        break;
    }
    case 5:
        skip = 4;
        break;
    default:
        return AF_EPARSE;
    }
    if (skip > (size_t)(r->end - r->p))
        return AF_EPARSE;
    r->p += skip;
    return 0;
}

static void copy_text(char *out, size_t out_len, const pb_reader *s)
{
    size_t n = (size_t)(s->end - s->p);
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, s->p, n);
    out[n] = '\0';
}

/* ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }, merged
 * into *out (a repeated sub-message merges, as protobuf parsers do). */
static int pb_partial_success(pb_reader r, af_otlp_response *out)
{
    while (r.p < r.end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb_reader body = {0};
        if (pb_field(&r, &field, &wire, &v, &body) != 0)
            return AF_EPARSE;
        if (field == 1 && wire == 0)
            out->rejected_spans = (int64_t)v;
        else if (field == 2 && wire == 2)
            copy_text(out->error_message, sizeof(out->error_message), &body);
        else if (field <= 2)
            return AF_EPARSE; /* a known field with the wrong wire type */
    }
    return 0;
}

int af__otlp_proto_decode_response(const uint8_t *p, size_t n, af_otlp_response *out)
{
    if (!out)
        return -EINVAL;
    response_clear(out);
    if (n == 0)
        return 0;
    if (!p)
        return AF_EPARSE;
    /* ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; } */
    pb_reader r = {p, p + n};
    while (r.p < r.end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb_reader body = {0};
        if (pb_field(&r, &field, &wire, &v, &body) != 0)
            goto bad;
        if (field != 1)
            continue;
        if (wire != 2 || pb_partial_success(body, out) != 0)
            goto bad;
        out->has_partial_success = true;
    }
    return 0;
bad:
    response_clear(out);
    return AF_EPARSE;
}

/* ---- JSON --------------------------------------------------------------------------------- */

/*
 * A strict RFC 8259 reader over a body that is not NUL-terminated: every value is validated
 * (UTF-8, escapes, number grammar, nesting depth), and objects are searched for the few
 * members read here. A member that is read and appears twice is ambiguous, so malformed.
 */
#define JSON_MAX_DEPTH 64

typedef struct json_reader {
    const char *p, *end;
    int depth;
} json_reader;

static void json_ws(json_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
        r->p++;
}

static bool json_lit(json_reader *r, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
        return false;
    r->p += n;
    return true;
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = af__hex_digit(p[i]);
        if (d < 0)
            return AF_EPARSE;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (no overlongs, surrogates or > U+10FFFF),
 * 0 when malformed. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 0 || c > 0xF4 || n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] >= 0x90))
        return 0;
    return len;
}

/* Appends to a bounded output; excess is dropped (out keeps a NUL terminator). */
static void put_bytes(char *out, size_t out_len, size_t *used, const void *p, size_t n)
{
    if (!out || *used + 1 >= out_len)
        return;
    if (n > out_len - 1 - *used)
        n = out_len - 1 - *used;
    memcpy(out + *used, p, n);
    *used += n;
    out[*used] = '\0';
}

/* A string at r->p (which is '"'), decoded into out (truncated to out_len - 1 bytes; out may
 * be NULL to only validate). U+0000 is rejected: the text ends up in C strings. */
static int json_string_read(json_reader *r, char *out, size_t out_len)
{
    size_t used = 0;
    if (out && out_len)
        out[0] = '\0';
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return AF_EPARSE;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
            if (n == 0)
                return AF_EPARSE;
            put_bytes(out, out_len, &used, r->p, n);
            r->p += n;
            continue;
        }
        if (c != '\\') {
            put_bytes(out, out_len, &used, r->p++, 1);
            continue;
        }
        if (r->end - r->p < 2)
            return AF_EPARSE;
        char e = r->p[1];
        r->p += 2;
        static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(esc_in, e) : NULL;
        if (hit) {
            put_bytes(out, out_len, &used, &esc_out[hit - esc_in], 1);
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || r->end - r->p < 4 || hex4(r->p, &cp) != 0)
            return AF_EPARSE;
        r->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return AF_EPARSE; /* a low surrogate first */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                hex4(r->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                return AF_EPARSE;
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0)
            return AF_EPARSE;
        unsigned char u[4];
        size_t n;
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
            n = 1;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | cp >> 6);
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | cp >> 12);
            u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | cp >> 18);
            u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        put_bytes(out, out_len, &used, u, n);
    }
    return AF_EPARSE;
}

static bool is_digit(json_reader *r)
{
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number_skip(json_reader *r)
{
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (!is_digit(r))
        return AF_EPARSE;
    if (*r->p++ != '0')
        while (is_digit(r))
            r->p++;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!is_digit(r))
            return AF_EPARSE;
        while (is_digit(r))
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!is_digit(r))
            return AF_EPARSE;
        while (is_digit(r))
            r->p++;
    }
    return 0;
}

static int json_object_scan(json_reader *r, const char *const *names, json_reader *found,
                            size_t n_names);

/* Validates and skips the value at r->p (leading whitespace already skipped). */
static int json_skip(json_reader *r)
{
    if (r->p == r->end)
        return AF_EPARSE;
    switch (*r->p) {
    case '"':
        return json_string_read(r, NULL, 0);
    case '{':
        return json_object_scan(r, NULL, NULL, 0);
    case '[':
        if (++r->depth > JSON_MAX_DEPTH)
            return AF_EPARSE;
        r->p++;
        json_ws(r);
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            r->depth--;
            return 0;
        }
        for (;;) {
            json_ws(r);
            if (json_skip(r) != 0)
                return AF_EPARSE;
            json_ws(r);
            if (r->p == r->end)
                return AF_EPARSE;
            char c = *r->p++;
            if (c == ']') {
                r->depth--;
                return 0;
            }
            if (c != ',')
                return AF_EPARSE;
        }
    case 't':
        return json_lit(r, "true") ? 0 : AF_EPARSE;
    case 'f':
        return json_lit(r, "false") ? 0 : AF_EPARSE;
    case 'n':
        return json_lit(r, "null") ? 0 : AF_EPARSE;
    default:
        return json_number_skip(r);
    }
}

/*
 * Validates the object at r->p and skips it. For each of the n_names member names, found[i]
 * is set to the member's value (p == NULL when absent); a wanted name seen twice is AF_EPARSE.
 */
static int json_object_scan(json_reader *r, const char *const *names, json_reader *found,
                            size_t n_names)
{
    for (size_t i = 0; i < n_names; i++)
        found[i] = (json_reader){NULL, NULL, 0};
    if (r->p == r->end || *r->p != '{' || ++r->depth > JSON_MAX_DEPTH)
        return AF_EPARSE;
    r->p++;
    json_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        r->depth--;
        return 0;
    }
    for (;;) {
        json_ws(r);
        /* Names longer than any wanted one are validated but never match. */
        char key[32];
        const char *key_start = r->p;
        if (r->p == r->end || *r->p != '"' || json_string_read(r, key, sizeof key) != 0)
            return AF_EPARSE;
        bool whole = (size_t)(r->p - key_start) < sizeof key; /* raw length bounds decoded */
        json_ws(r);
        if (r->p == r->end || *r->p++ != ':')
            return AF_EPARSE;
        json_ws(r);
        const char *value = r->p;
        if (json_skip(r) != 0)
            return AF_EPARSE;
        for (size_t i = 0; whole && i < n_names; i++) {
            if (strcmp(key, names[i]) != 0)
                continue;
            if (found[i].p)
                return AF_EPARSE;
            found[i] = (json_reader){value, r->p, r->depth};
        }
        json_ws(r);
        if (r->p == r->end)
            return AF_EPARSE;
        char c = *r->p++;
        if (c == '}') {
            r->depth--;
            return 0;
        }
        if (c != ',')
            return AF_EPARSE;
    }
}

/* Validates a whole body holding one value; *root is that value. */
static int json_document(const char *p, size_t n, json_reader *root)
{
    json_reader r = {p, p + n, 0};
    json_ws(&r);
    *root = r;
    if (json_skip(&r) != 0)
        return AF_EPARSE;
    json_ws(&r);
    root->end = r.p;
    return r.p == r.end ? 0 : AF_EPARSE;
}

static bool json_is(const json_reader *v, char first)
{
    return v->p && *v->p == first;
}

static bool json_is_null(const json_reader *v)
{
    return v->p && *v->p == 'n';
}

/* int64 in proto3 JSON: a decimal string or an integral number. */
static int json_int64(json_reader v, int64_t *out)
{
    char text[64];
    if (json_is(&v, '"')) {
        if (json_string_read(&v, text, sizeof text) != 0)
            return AF_EPARSE;
    } else {
        size_t n = (size_t)(v.end - v.p);
        if (!(json_is(&v, '-') || (*v.p >= '0' && *v.p <= '9')) || n >= sizeof text)
            return AF_EPARSE;
        memcpy(text, v.p, n);
        text[n] = '\0';
        if (strpbrk(text, ".eE")) {
            double d = strtod(text, NULL);
            /* In range first: converting an out-of-range double is undefined. */
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
                return AF_EPARSE;
            *out = (int64_t)d;
            return 0;
        }
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return AF_EPARSE;
    *out = (int64_t)x;
    return 0;
}

/* True when the body holds nothing but JSON whitespace. */
static bool json_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

int af__otlp_json_decode_response(const char *p, size_t n, af_otlp_response *out)
{
    if (!out)
        return -EINVAL;
    response_clear(out);
    if (n == 0 || (p && json_blank(p, n)))
        return 0;
    if (!p)
        return AF_EPARSE;
    /* proto3 JSON parsers accept the lowerCamelCase name and the original field name; the
     * first wins when a body has both. */
    static const char *const top[] = {"partialSuccess", "partial_success"};
    static const char *const fields[] = {"rejectedSpans", "rejected_spans", "errorMessage",
                                         "error_message"};
    json_reader root, f[4];
    if (json_document(p, n, &root) != 0 || json_object_scan(&root, top, f, 2) != 0)
        return AF_EPARSE;
    json_reader ps = f[0].p ? f[0] : f[1];
    if (!ps.p || json_is_null(&ps))
        return 0;
    if (json_object_scan(&ps, fields, f, 4) != 0)
        return AF_EPARSE;
    json_reader rej = f[0].p ? f[0] : f[1], msg = f[2].p ? f[2] : f[3];
    int64_t rejected = 0;
    if (rej.p && !json_is_null(&rej) && json_int64(rej, &rejected) != 0)
        return AF_EPARSE;
    if (msg.p && !json_is_null(&msg) && !json_is(&msg, '"'))
        return AF_EPARSE;
    out->has_partial_success = true;
    out->rejected_spans = rejected;
    if (json_is(&msg, '"'))
        json_string_read(&msg, out->error_message, sizeof(out->error_message));
    return 0;
}

void af__otlp_decode_status_message(const uint8_t *p, size_t n, bool json, char *out,
                                    size_t out_len)
{
    if (!out || out_len == 0)
        return;
    out[0] = '\0';
    if (!p || n == 0)
        return;
    if (json) {
        static const char *const names[] = {"message"};
        json_reader root, msg;
        if (json_document((const char *)p, n, &root) == 0 &&
            json_object_scan(&root, names, &msg, 1) == 0 && json_is(&msg, '"') &&
            json_string_read(&msg, out, out_len) != 0)
            out[0] = '\0';
        return;
    }
    /* google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; } */
    char text[1024] = "";
    pb_reader r = {p, p + n};
    while (r.p < r.end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb_reader body = {0};
        if (pb_field(&r, &field, &wire, &v, &body) != 0 ||
            (field <= 3 && wire != (field == 1 ? 0u : 2u)))
            return;
        if (field == 2)
            copy_text(text, sizeof text, &body);
    }
    af__strlcpy(out, text, out_len);
}
