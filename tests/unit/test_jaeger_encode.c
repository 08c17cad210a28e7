/*
 * Jaeger Thrift encoder: exact bytes of a tiny batch (struct and field headers, microseconds,
 * signed id halves), and the OpenTelemetry-to-Jaeger tag mapping read back with a small
 * Thrift binary reader.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export/encode.h"

static af_resource *resource_svc(void)
{
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("service.name", "svc")), &r), 0);
    return r;
}

static void span_basic(af_span_data *s, const af_resource *r)
{
    static const af_instrumentation_scope no_scope = {"", "", "", NULL, 0};
    memset(s, 0, sizeof(*s));
    memset(s->trace_id, 0xff, 8); /* high half -1 as a signed i64 */
    for (int i = 8; i < 16; i++)
        s->trace_id[i] = (uint8_t)i;
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)(0xa1 + i);
    s->trace_flags = 1;
    s->trace_state = "";
    s->name = "op";
    s->kind = AF_SPAN_KIND_INTERNAL;
    s->start_ns = 2000999; /* 2000 us, the remainder is cut */
    s->end_ns = 5001999;   /* duration 3001000 ns = 3001 us */
    s->status_message = "";
    s->resource = r;
    s->scope = &no_scope;
}

static void test_tiny_batch_bytes(void **state)
{
    (void)state;
    af_resource *r = resource_svc();
    af_span_data s;
    span_basic(&s, r);
    const af_span_data *spans[] = {&s};
    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__jaeger_thrift_encode(spans, 1, &b), 0);
    static const uint8_t want[] = {
        0x0C, 0x00, 0x01,                                               /* process: struct, id 1 */
        0x0B, 0x00, 0x01, 0,    0,    0,    3,    's',  'v',  'c',      /* serviceName */
        0x00,                                                           /* end of Process */
        0x0F, 0x00, 0x02, 0x0C, 0,    0,    0,    1,                    /* spans: list<struct>, 1 */
        0x0A, 0x00, 0x01, 8,    9,    10,   11,   12,   13,   14,   15, /* traceIdLow */
        0x0A, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* traceIdHigh */
        0x0A, 0x00, 0x03, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, /* spanId */
        0x0A, 0x00, 0x04, 0,    0,    0,    0,    0,    0,    0,    0,    /* parentSpanId: root */
        0x0B, 0x00, 0x05, 0,    0,    0,    2,    'o',  'p',              /* operationName */
        0x08, 0x00, 0x07, 0,    0,    0,    1,                            /* flags */
        0x0A, 0x00, 0x08, 0,    0,    0,    0,    0,    0,    0x07, 0xD0, /* startTime 2000 us */
        0x0A, 0x00, 0x09, 0,    0,    0,    0,    0,    0,    0x0B, 0xB9, /* duration 3001 us */
        0x00,                                                             /* end of Span */
        0x00,                                                             /* end of Batch */
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    af__buf_clear(&b);
    af_resource_free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* A Thrift binary reader producing a tree, enough for the jaeger.thrift structs.            */

typedef struct tnode {
    uint8_t type;
    int16_t id; /* field id; 0 for list elements */
    int64_t i;  /* bool, i32, i64 */
    double d;
    const uint8_t *s; /* string */
    uint32_t slen;
    struct tnode *kids; /* struct fields or list elements */
    size_t n_kids;
} tnode;

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint64_t rd(reader *r, int n)
{
    assert_true(r->end - r->p >= n);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | *r->p++;
    return v;
}

static void read_value(reader *r, tnode *n);

static void read_struct(reader *r, tnode *n)
{
    n->kids = NULL;
    n->n_kids = 0;
    for (;;) {
        uint8_t type = (uint8_t)rd(r, 1);
        if (type == 0)
            return;
        n->kids = realloc(n->kids, (n->n_kids + 1) * sizeof(tnode));
        assert_non_null(n->kids);
        tnode *k = &n->kids[n->n_kids++];
        memset(k, 0, sizeof(*k));
        k->type = type;
        k->id = (int16_t)rd(r, 2);
        read_value(r, k);
    }
}

static void read_value(reader *r, tnode *n)
{
    switch (n->type) {
    case 2:
        n->i = (int64_t)rd(r, 1);
        break;
    case 4: {
        uint64_t bits = rd(r, 8);
        memcpy(&n->d, &bits, 8);
        break;
    }
    case 8:
        n->i = (int32_t)rd(r, 4);
        break;
    case 10:
        n->i = (int64_t)rd(r, 8);
        break;
    case 11:
        n->slen = (uint32_t)rd(r, 4);
        assert_true((size_t)(r->end - r->p) >= n->slen);
        n->s = r->p;
        r->p += n->slen;
        break;
    case 12:
        read_struct(r, n);
        break;
    case 15: {
        uint8_t et = (uint8_t)rd(r, 1);
        n->n_kids = (size_t)rd(r, 4);
        n->kids = calloc(n->n_kids ? n->n_kids : 1, sizeof(tnode));
        for (size_t i = 0; i < n->n_kids; i++) {
            n->kids[i].type = et;
            read_value(r, &n->kids[i]);
        }
        break;
    }
    default:
        fail_msg("unexpected thrift type %d", n->type);
    }
}

static void tnode_free(tnode *n)
{
    for (size_t i = 0; i < n->n_kids; i++)
        tnode_free(&n->kids[i]);
    free(n->kids);
}

static const tnode *fld(const tnode *st, int16_t id)
{
    for (size_t i = 0; i < st->n_kids; i++)
        if (st->kids[i].id == id)
            return &st->kids[i];
    return NULL;
}

static bool str_eq(const tnode *n, const char *s)
{
    return n && n->type == 11 && n->slen == strlen(s) && memcmp(n->s, s, n->slen) == 0;
}

/* The Tag struct with this key in a list<Tag>, or NULL. */
static const tnode *tag(const tnode *list, const char *key)
{
    if (!list)
        return NULL;
    for (size_t i = 0; i < list->n_kids; i++)
        if (str_eq(fld(&list->kids[i], 1), key))
            return &list->kids[i];
    return NULL;
}

static void assert_tag_str(const tnode *list, const char *key, const char *v)
{
    const tnode *t = tag(list, key);
    if (!t)
        fail_msg("missing tag %s", key);
    assert_int_equal(fld(t, 2)->i, 0);
    if (!str_eq(fld(t, 3), v))
        fail_msg("tag %s: wrong string value", key);
}

static void assert_tag_long(const tnode *list, const char *key, int64_t v)
{
    const tnode *t = tag(list, key);
    if (!t)
        fail_msg("missing tag %s", key);
    assert_int_equal(fld(t, 2)->i, 3);
    assert_int_equal(fld(t, 6)->i, v);
}

static void parse(const af_buf *b, tnode *root)
{
    reader r = {b->data, b->data + b->len};
    memset(root, 0, sizeof(*root));
    root->type = 12;
    read_struct(&r, root);
    assert_ptr_equal(r.p, r.end);
}

static const char *const str_items[] = {"a", "b\"c"};
static const bool bool_items[] = {true, false};
static const int64_t int_items[] = {-1, 9007199254740993};
static const double dbl_items[] = {0.5, -2.25};

static void test_mapping(void **state)
{
    (void)state;
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(AF_ATTRS(AF_STR("host.name", "h1"),
                                                  AF_STR("service.name", "svc"), AF_INT("pid", 42)),
                                         &r),
                     0);
    static const af_instrumentation_scope scope = {"lib", "1.2", "", NULL, 0};
    af_attr attrs[] = {
        AF_STR("s", "str"),
        AF_BOOL("b", true),
        AF_INT("i", -7),
        AF_DOUBLE("d", 2.5),
        AF_STR_ARRAY("sa", str_items, 2),
        AF_BOOL_ARRAY("ba", bool_items, 2),
        AF_INT_ARRAY("ia", int_items, 2),
        AF_DOUBLE_ARRAY("da", dbl_items, 2),
    };
    af_attr ev_attrs[] = {AF_INT("n", 1)};
    af_attr ev2_attrs[] = {AF_STR("event", "mine")};
    af_event_data evs[2] = {
        {.time_ns = 7000123, .name = "ev", .attrs = ev_attrs, .n_attrs = 1, .dropped_attrs = 2},
        {.time_ns = 8000000, .name = "ignored", .attrs = ev2_attrs, .n_attrs = 1},
    };
    af_link_data ln = {.trace_flags = 1, .trace_state = "", .attrs = attrs, .n_attrs = 1};
    memset(ln.trace_id, 0x80, 16);
    memset(ln.span_id, 0x01, 8);

    af_span_data s;
    span_basic(&s, r);
    s.scope = &scope;
    s.has_parent = true;
    memcpy(s.parent_span_id, "\x80\0\0\0\0\0\0\x01", 8);
    s.kind = AF_SPAN_KIND_CLIENT;
    s.trace_state = "vendor=x";
    s.attrs = attrs;
    s.n_attrs = 8;
    s.dropped_attrs = 1;
    s.events = evs;
    s.n_events = 2;
    s.dropped_events = 2;
    s.links = &ln;
    s.n_links = 1;
    s.dropped_links = 3;
    s.status = AF_STATUS_ERROR;
    s.status_message = "boom";
    af_span_data s2;
    span_basic(&s2, r);
    s2.status = AF_STATUS_OK;
    const af_span_data *spans[] = {&s, &s2};

    af_buf b;
    af__buf_init(&b);
    assert_int_equal(af__jaeger_thrift_encode(spans, 2, &b), 0);
    tnode root;
    parse(&b, &root);

    const tnode *proc = fld(&root, 1);
    assert_true(str_eq(fld(proc, 1), "svc"));
    const tnode *ptags = fld(proc, 2);
    assert_int_equal(ptags->n_kids, 2);
    assert_tag_str(ptags, "host.name", "h1");
    assert_tag_long(ptags, "pid", 42);
    assert_null(tag(ptags, "service.name"));

    const tnode *list = fld(&root, 2);
    assert_int_equal(list->n_kids, 2);
    const tnode *sp = &list->kids[0];
    assert_int_equal(fld(sp, 4)->i, INT64_MIN + 1); /* 0x8000000000000001 as signed */
    assert_int_equal(fld(sp, 9)->i, 3001);
    const tnode *refs = fld(sp, 6);
    assert_int_equal(refs->n_kids, 1);
    assert_int_equal(fld(&refs->kids[0], 1)->i, 1); /* FOLLOWS_FROM */
    assert_int_equal(fld(&refs->kids[0], 2)->i, (int64_t)0x8080808080808080u);
    assert_int_equal(fld(&refs->kids[0], 3)->i, (int64_t)0x8080808080808080u);
    assert_int_equal(fld(&refs->kids[0], 4)->i, 0x0101010101010101);

    const tnode *tags = fld(sp, 10);
    assert_tag_str(tags, "s", "str");
    const tnode *t = tag(tags, "b");
    assert_int_equal(fld(t, 2)->i, 2);
    assert_int_equal(fld(t, 5)->i, 1);
    assert_tag_long(tags, "i", -7);
    t = tag(tags, "d");
    assert_int_equal(fld(t, 2)->i, 1);
    assert_true(fld(t, 4)->d == 2.5);
    assert_tag_str(tags, "sa", "[\"a\",\"b\\\"c\"]");
    assert_tag_str(tags, "ba", "[true,false]");
    assert_tag_str(tags, "ia", "[-1,9007199254740993]");
    assert_tag_str(tags, "da", "[0.5,-2.25]");
    assert_tag_str(tags, "span.kind", "client");
    assert_tag_str(tags, "otel.status_code", "ERROR");
    t = tag(tags, "error");
    assert_int_equal(fld(t, 5)->i, 1);
    assert_tag_str(tags, "otel.status_description", "boom");
    assert_tag_str(tags, "otel.scope.name", "lib");
    assert_tag_str(tags, "otel.scope.version", "1.2");
    assert_tag_str(tags, "otel.library.name", "lib");
    assert_tag_str(tags, "otel.library.version", "1.2");
    assert_tag_long(tags, "otel.dropped_attributes_count", 1);
    assert_tag_long(tags, "otel.dropped_events_count", 2);
    assert_tag_long(tags, "otel.dropped_links_count", 3);
    assert_tag_str(tags, "w3c.tracestate", "vendor=x");
    assert_int_equal(tags->n_kids, 8 + 12);

    const tnode *logs = fld(sp, 11);
    assert_int_equal(logs->n_kids, 2);
    assert_int_equal(fld(&logs->kids[0], 1)->i, 7000);
    const tnode *fields = fld(&logs->kids[0], 2);
    assert_int_equal(fields->n_kids, 3);
    assert_tag_long(fields, "n", 1);
    assert_tag_str(fields, "event", "ev");
    assert_tag_long(fields, "otel.event.dropped_attributes_count", 2);
    fields = fld(&logs->kids[1], 2);
    assert_int_equal(fields->n_kids, 1); /* the attribute named "event" wins */
    assert_tag_str(fields, "event", "mine");

    /* Second span: internal, Ok, no scope name: only the status tag; no refs or logs. */
    sp = &list->kids[1];
    assert_int_equal(fld(sp, 2)->i, -1);
    assert_int_equal(fld(sp, 4)->i, 0);
    tags = fld(sp, 10);
    assert_int_equal(tags->n_kids, 1);
    assert_tag_str(tags, "otel.status_code", "OK");
    assert_null(fld(sp, 6));
    assert_null(fld(sp, 11));

    tnode_free(&root);
    af__buf_clear(&b);
    af_resource_free(r);
}

static void test_fallbacks_and_errors(void **state)
{
    (void)state;
    af_buf b;
    af__buf_init(&b);
    /* No service.name: the spec's fallback name, and no process tags field at all. */
    af_resource *r = NULL;
    assert_int_equal(af_resource_new_raw(NULL, 0, &r), 0);
    af_span_data s;
    span_basic(&s, r);
    const af_span_data *spans[] = {&s};
    assert_int_equal(af__jaeger_thrift_encode(spans, 1, &b), 0);
    tnode root;
    parse(&b, &root);
    assert_true(str_eq(fld(fld(&root, 1), 1), "unknown_service"));
    assert_null(fld(fld(&root, 1), 2));
    tnode_free(&root);

    /* An empty batch is still a well-formed Batch. */
    af__buf_reset(&b);
    assert_int_equal(af__jaeger_thrift_encode(NULL, 0, &b), 0);
    parse(&b, &root);
    assert_int_equal(fld(&root, 2)->n_kids, 0);
    tnode_free(&root);

    const af_span_data *none[] = {NULL};
    assert_int_equal(af__jaeger_thrift_encode(none, 1, &b), -EINVAL);
    assert_int_equal(af__jaeger_thrift_encode(NULL, 1, &b), -EINVAL);
    af__buf_clear(&b);
    af_resource_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_batch_bytes),
        cmocka_unit_test(test_mapping),
        cmocka_unit_test(test_fallbacks_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
