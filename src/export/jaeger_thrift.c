/*
 * Jaeger Thrift encoder: one jaeger.thrift Batch in the Thrift binary protocol
 * (docs/standards.md, Jaeger), mapped from OpenTelemetry as described there.
 *
 * The structs are fixed, so they are written by hand: a field is its type byte, its id as a
 * big-endian i16, then the value; a struct ends with a stop byte; a list is the element type
 * and a big-endian i32 count. Counts that are only known after writing (tags) are patched in.
 *
 * Not carried, because Jaeger has nowhere to put them: link attributes, trace state of links,
 * resource/scope schema URLs, and the remote flag of parents and links.
 */
#include "export/encode.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    T_STOP = 0,
    T_BOOL = 2,
    T_DOUBLE = 4,
    T_I32 = 8,
    T_I64 = 10,
    T_STRING = 11,
    T_STRUCT = 12,
    T_LIST = 15,
};

enum { TAG_STRING = 0, TAG_DOUBLE = 1, TAG_BOOL = 2, TAG_LONG = 3 };
enum { REF_FOLLOWS_FROM = 1 };

static void put_u16(af_buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    af__buf_append(b, p, 2);
}

static void put_u32(af_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    af__buf_append(b, p, 4);
}

static void put_u64(af_buf *b, uint64_t v)
{
    uint8_t p[8];
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
    af__buf_append(b, p, 8);
}

static void field(af_buf *b, uint8_t type, uint16_t id)
{
    af__buf_putc(b, (char)type);
    put_u16(b, id);
}

static void put_string(af_buf *b, const char *s, size_t n)
{
    /* Thrift lengths are i32; longer strings cannot be represented and are cut. */
    if (n > INT32_MAX)
        n = INT32_MAX;
    put_u32(b, (uint32_t)n);
    af__buf_append(b, s, n);
}

static void put_cstr(af_buf *b, const char *s)
{
    put_string(b, s ? s : "", s ? strlen(s) : 0);
}

/* Starts a list of structs whose length is patched later; returns the offset of the count. */
static size_t list_begin(af_buf *b, uint16_t id)
{
    field(b, T_LIST, id);
    af__buf_putc(b, T_STRUCT);
    size_t at = b->len;
    put_u32(b, 0);
    return at;
}

static void list_patch(af_buf *b, size_t at, uint32_t count)
{
    if (b->failed)
        return;
    uint8_t *p = b->data + at;
    p[0] = (uint8_t)(count >> 24);
    p[1] = (uint8_t)(count >> 16);
    p[2] = (uint8_t)(count >> 8);
    p[3] = (uint8_t)count;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* Tags.                                                                                     */

static void tag_begin(af_buf *b, const char *key, int32_t vtype)
{
    field(b, T_STRING, 1);
    put_cstr(b, key);
    field(b, T_I32, 2);
    put_u32(b, (uint32_t)vtype);
}

static void tag_str(af_buf *b, const char *key, const char *v, size_t n)
{
    tag_begin(b, key, TAG_STRING);
    field(b, T_STRING, 3);
    put_string(b, v, n);
    af__buf_putc(b, T_STOP);
}

static void tag_cstr(af_buf *b, const char *key, const char *v)
{
    tag_str(b, key, v, strlen(v));
}

static void tag_long(af_buf *b, const char *key, int64_t v)
{
    tag_begin(b, key, TAG_LONG);
    field(b, T_I64, 6);
    put_u64(b, (uint64_t)v);
    af__buf_putc(b, T_STOP);
}

static void tag_bool(af_buf *b, const char *key, bool v)
{
    tag_begin(b, key, TAG_BOOL);
    field(b, T_BOOL, 5);
    af__buf_putc(b, v ? 1 : 0);
    af__buf_putc(b, T_STOP);
}

static void tag_double(af_buf *b, const char *key, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    tag_begin(b, key, TAG_DOUBLE);
    field(b, T_DOUBLE, 4);
    put_u64(b, bits);
    af__buf_putc(b, T_STOP);
}

/* JSON text of a double inside an array tag; JSON has no NaN or infinity, so those become
 * the strings proto3 JSON uses. */
static void json_double(af_buf *j, double d)
{
    if (isnan(d)) {
        af__buf_puts(j, "\"NaN\"");
    } else if (isinf(d)) {
        af__buf_puts(j, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "%.15g", d);
        if (strtod(tmp, NULL) != d)
            n = snprintf(tmp, sizeof(tmp), "%.17g", d);
        af__buf_append(j, tmp, (size_t)n);
    }
}

/* Arrays have no Thrift tag type: they travel as a JSON list in a string tag, as the OTel
 * Jaeger exporters did. `scratch` is reused between tags. */
static void tag_array(af_buf *b, af_buf *scratch, const af_attr *a)
{
    af__buf_reset(scratch);
    af__buf_putc(scratch, '[');
    for (size_t i = 0; i < a->v.arr.count; i++) {
        if (i)
            af__buf_putc(scratch, ',');
        switch (a->type) {
        case AF_VAL_STRING_ARRAY: {
            const char *s = ((const char *const *)a->v.arr.items)[i];
            af__buf_json_string(scratch, s ? s : "", s ? strlen(s) : 0);
            break;
        }
        case AF_VAL_BOOL_ARRAY:
            af__buf_puts(scratch, ((const bool *)a->v.arr.items)[i] ? "true" : "false");
            break;
        case AF_VAL_INT_ARRAY:
            af__buf_printf(scratch, "%lld", (long long)((const int64_t *)a->v.arr.items)[i]);
            break;
        default:
            json_double(scratch, ((const double *)a->v.arr.items)[i]);
            break;
        }
    }
    af__buf_putc(scratch, ']');
    if (scratch->failed) {
        b->failed = true;
        return;
    }
    tag_str(b, a->key, (const char *)scratch->data, scratch->len);
}

static void tag_attr(af_buf *b, af_buf *scratch, const af_attr *a)
{
    switch (a->type) {
    case AF_VAL_STRING: {
        const char *s = a->v.s.ptr ? a->v.s.ptr : "";
        size_t n = a->v.s.ptr ? (a->v.s.len == AF_LEN_NUL ? strlen(s) : a->v.s.len) : 0;
        tag_str(b, a->key, s, n);
        break;
    }
    case AF_VAL_BOOL:
        tag_bool(b, a->key, a->v.b);
        break;
    case AF_VAL_INT:
        tag_long(b, a->key, a->v.i);
        break;
    case AF_VAL_DOUBLE:
        tag_double(b, a->key, a->v.d);
        break;
    default:
        tag_array(b, scratch, a);
        break;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Process, spans, logs.                                                                     */

static bool is_service_name(const af_attr *a)
{
    return a->type == AF_VAL_STRING && a->key && strcmp(a->key, "service.name") == 0 && a->v.s.ptr;
}

static void write_process(af_buf *b, af_buf *scratch, const af_resource *r)
{
    size_t n = 0;
    const af_attr *attrs = r ? af_resource_attrs(r, &n) : NULL;
    const af_attr *svc = NULL;
    for (size_t i = 0; i < n; i++)
        if (is_service_name(&attrs[i]))
            svc = &attrs[i];

    field(b, T_STRUCT, 1);
    field(b, T_STRING, 1);
    if (svc)
        put_string(b, svc->v.s.ptr,
                   svc->v.s.len == AF_LEN_NUL ? strlen(svc->v.s.ptr) : svc->v.s.len);
    else
        put_cstr(b, "unknown_service");
    if (n > (svc ? 1u : 0u)) {
        size_t at = list_begin(b, 2);
        uint32_t count = 0;
        for (size_t i = 0; i < n; i++) {
            if (&attrs[i] == svc)
                continue;
            tag_attr(b, scratch, &attrs[i]);
            count++;
        }
        list_patch(b, at, count);
    }
    af__buf_putc(b, T_STOP);
}

static void write_log(af_buf *b, af_buf *scratch, const af_event_data *e)
{
    field(b, T_I64, 1);
    put_u64(b, e->time_ns / 1000);
    size_t at = list_begin(b, 2);
    uint32_t count = 0;
    bool has_event_attr = false;
    for (uint32_t i = 0; i < e->n_attrs; i++) {
        tag_attr(b, scratch, &e->attrs[i]);
        count++;
        if (e->attrs[i].key && strcmp(e->attrs[i].key, "event") == 0)
            has_event_attr = true;
    }
    /* An attribute named "event" already says what the log is. */
    if (!has_event_attr) {
        tag_cstr(b, "event", e->name ? e->name : "");
        count++;
    }
    if (e->dropped_attrs) {
        tag_long(b, "otel.event.dropped_attributes_count", e->dropped_attrs);
        count++;
    }
    list_patch(b, at, count);
    af__buf_putc(b, T_STOP);
}

static const char *kind_tag(af_span_kind k)
{
    switch (k) {
    case AF_SPAN_KIND_SERVER:
        return "server";
    case AF_SPAN_KIND_CLIENT:
        return "client";
    case AF_SPAN_KIND_PRODUCER:
        return "producer";
    case AF_SPAN_KIND_CONSUMER:
        return "consumer";
    default:
        return NULL; /* INTERNAL gets no tag */
    }
}

static uint32_t write_span_tags(af_buf *b, af_buf *scratch, const af_span_data *s)
{
    uint32_t count = 0;
    for (uint32_t i = 0; i < s->n_attrs; i++, count++)
        tag_attr(b, scratch, &s->attrs[i]);
    const char *kind = kind_tag(s->kind);
    if (kind) {
        tag_cstr(b, "span.kind", kind);
        count++;
    }
    if (s->status == AF_STATUS_OK) {
        tag_cstr(b, "otel.status_code", "OK");
        count++;
    } else if (s->status == AF_STATUS_ERROR) {
        tag_cstr(b, "otel.status_code", "ERROR");
        tag_bool(b, "error", true);
        count += 2;
        if (s->status_message && *s->status_message) {
            tag_cstr(b, "otel.status_description", s->status_message);
            count++;
        }
    }
    /* Scope under the current and the deprecated keys: mapping-to-non-otlp.md wants both. */
    if (s->scope && s->scope->name && *s->scope->name) {
        tag_cstr(b, "otel.scope.name", s->scope->name);
        tag_cstr(b, "otel.library.name", s->scope->name);
        count += 2;
    }
    if (s->scope && s->scope->version && *s->scope->version) {
        tag_cstr(b, "otel.scope.version", s->scope->version);
        tag_cstr(b, "otel.library.version", s->scope->version);
        count += 2;
    }
    if (s->dropped_attrs) {
        tag_long(b, "otel.dropped_attributes_count", s->dropped_attrs);
        count++;
    }
    if (s->dropped_events) {
        tag_long(b, "otel.dropped_events_count", s->dropped_events);
        count++;
    }
    if (s->dropped_links) {
        tag_long(b, "otel.dropped_links_count", s->dropped_links);
        count++;
    }
    if (s->trace_state && *s->trace_state) {
        tag_cstr(b, "w3c.tracestate", s->trace_state);
        count++;
    }
    return count;
}

static void write_span(af_buf *b, af_buf *scratch, const af_span_data *s)
{
    field(b, T_I64, 1);
    put_u64(b, be64(s->trace_id + 8));
    field(b, T_I64, 2);
    put_u64(b, be64(s->trace_id));
    field(b, T_I64, 3);
    put_u64(b, be64(s->span_id));
    field(b, T_I64, 4);
    put_u64(b, s->has_parent ? be64(s->parent_span_id) : 0);
    field(b, T_STRING, 5);
    put_cstr(b, s->name);
    if (s->n_links) {
        field(b, T_LIST, 6);
        af__buf_putc(b, T_STRUCT);
        put_u32(b, s->n_links);
        for (uint32_t i = 0; i < s->n_links; i++) {
            const af_link_data *l = &s->links[i];
            field(b, T_I32, 1);
            put_u32(b, REF_FOLLOWS_FROM);
            field(b, T_I64, 2);
            put_u64(b, be64(l->trace_id + 8));
            field(b, T_I64, 3);
            put_u64(b, be64(l->trace_id));
            field(b, T_I64, 4);
            put_u64(b, be64(l->span_id));
            af__buf_putc(b, T_STOP);
        }
    }
    field(b, T_I32, 7);
    put_u32(b, s->trace_flags);
    field(b, T_I64, 8);
    put_u64(b, s->start_ns / 1000);
    field(b, T_I64, 9);
    put_u64(b, s->end_ns > s->start_ns ? (s->end_ns - s->start_ns) / 1000 : 0);

    size_t at = list_begin(b, 10);
    uint32_t count = write_span_tags(b, scratch, s);
    if (count) {
        list_patch(b, at, count);
    } else if (!b->failed) {
        /* No tags at all: drop the optional field header again. */
        b->len = at - 4;
    }
    if (s->n_events) {
        field(b, T_LIST, 11);
        af__buf_putc(b, T_STRUCT);
        put_u32(b, s->n_events);
        for (uint32_t i = 0; i < s->n_events; i++)
            write_log(b, scratch, &s->events[i]);
    }
    af__buf_putc(b, T_STOP);
}

int af__jaeger_thrift_encode(const af_span_data *const *spans, size_t n, af_buf *out)
{
    if ((!spans && n) || !out || n > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!spans[i])
            return -EINVAL;
    af_buf scratch;
    af__buf_init(&scratch);
    write_process(out, &scratch, n ? spans[0]->resource : NULL);
    field(out, T_LIST, 2);
    af__buf_putc(out, T_STRUCT);
    put_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        write_span(out, &scratch, spans[i]);
    af__buf_putc(out, T_STOP);
    af__buf_clear(&scratch);
    return out->failed ? -ENOMEM : 0;
}
