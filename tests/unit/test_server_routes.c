/*
 * test_server_routes.c - the daemon's route table and matcher (af__route_match), the Allow
 * header text for 405 (af__allow_text) and the JSON error bodies (af__resp_*), all without a
 * socket.
 *
 * Query strings never reach the matcher: the request parser splits the path from the query
 * (tests/unit/test_http_parse.c), so "?..." handling is covered there and by the integration
 * suite (tests/integration/test_daemon.c, e.g. /api/v1/gpu/{id}/history?hours=1).
 */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/common.h"
#include "server/server_int.h"

/* The index of the route with this method and pattern (the test fails when there is none). */
static int route_index(unsigned method, const char *pattern)
{
    for (size_t i = 0; i < af__nroutes; i++)
        if (af__routes[i].methods == method && strcmp(af__routes[i].pattern, pattern) == 0)
            return (int)i;
    fail_msg("no route %u %s", method, pattern);
    return -1;
}

static int match(const char *path, unsigned method, unsigned *allowed,
                 char params[AF__MAX_PARAMS][AF_GPU_ID_MAX])
{
    memset(params, 0, sizeof(char[AF__MAX_PARAMS][AF_GPU_ID_MAX]));
    return af__route_match(path, method, allowed, params);
}

/* ---------------------------------------------------------------------------------------- */
/* Matching.                                                                                 */

static void test_literal_routes(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    assert_int_equal(match("/health", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/health"));
    assert_int_equal(allowed, AF__M_GET | AF__M_HEAD);
    /* Same path, two routes: the method picks one, Allow lists both. */
    assert_int_equal(match("/api/v1/gpus", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpus"));
    assert_int_equal(allowed, AF__M_GET | AF__M_POST | AF__M_HEAD);
    assert_int_equal(match("/api/v1/gpus", AF__M_POST, &allowed, params),
                     route_index(AF__M_POST, "/api/v1/gpus"));
    assert_int_equal(allowed, AF__M_GET | AF__M_POST | AF__M_HEAD);
    /* A literal next to a template at the same depth is its own route. */
    assert_int_equal(match("/api/v1/alerts/summary", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/alerts/summary"));
}

static void test_template_segments(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    assert_int_equal(match("/api/v1/gpu/gpu-7/metrics", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpu/{id}/metrics"));
    assert_string_equal(params[0], "gpu-7");
    assert_int_equal(match("/api/v1/workloads/wl-42", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/workloads/{id}"));
    assert_string_equal(params[0], "wl-42");
    assert_int_equal(match("/api/v1/workloads/wl-42/cancel", AF__M_POST, &allowed, params),
                     route_index(AF__M_POST, "/api/v1/workloads/{id}/cancel"));
    assert_string_equal(params[0], "wl-42");
    /* Two parameters, in pattern order. */
    assert_int_equal(match("/api/v1/demo/trigger/gpu-0/thermal", AF__M_POST, &allowed, params),
                     route_index(AF__M_POST, "/api/v1/demo/trigger/{gpu}/{pattern}"));
    assert_string_equal(params[0], "gpu-0");
    assert_string_equal(params[1], "thermal");
    /* A parameter is one segment: it neither spans a slash nor is empty. */
    assert_int_equal(match("/api/v1/gpu/a/b/metrics", AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed, 0);
    assert_int_equal(match("/api/v1/gpu//metrics", AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed, 0);
    /* Percent-encoding is not decoded by the matcher: the segment is taken as sent. */
    assert_int_equal(match("/api/v1/traces/ab%2Fcd", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/traces/{id}"));
    assert_string_equal(params[0], "ab%2Fcd");
}

static void test_template_segment_length(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    char seg[AF_GPU_ID_MAX + 1];
    char path[AF_GPU_ID_MAX + 64];
    /* The longest segment that fits the parameter buffer with its NUL. */
    memset(seg, 'x', AF_GPU_ID_MAX - 1);
    seg[AF_GPU_ID_MAX - 1] = '\0';
    snprintf(path, sizeof(path), "/api/v1/gpu/%s/stats", seg);
    assert_int_equal(match(path, AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpu/{id}/stats"));
    assert_string_equal(params[0], seg);
    /* One more byte does not match (rather than truncating to another id). */
    memset(seg, 'x', AF_GPU_ID_MAX);
    seg[AF_GPU_ID_MAX] = '\0';
    snprintf(path, sizeof(path), "/api/v1/gpu/%s/stats", seg);
    assert_int_equal(match(path, AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed, 0);
}

static void test_trailing_slash(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    assert_int_equal(match("/api/v1/gpus/", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpus"));
    assert_int_equal(match("/health/", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/health"));
    assert_int_equal(match("/api/v1/gpu/g1/health/", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpu/{id}/health"));
    assert_string_equal(params[0], "g1");
    /* A trailing slash right after a parameter still ends the segment. */
    assert_int_equal(match("/api/v1/workloads/w1/", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/workloads/{id}"));
    assert_string_equal(params[0], "w1");
    /* Only one. */
    assert_int_equal(match("/api/v1/gpus//", AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed, 0);
}

static void test_unknown_paths_are_404(void **state)
{
    (void)state;
    unsigned allowed = 12345;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    static const char *const paths[] = {
        "/api/v1/nope",
        "/api/v1/gpuss",
        "/api/v1/gpus/extra",
        "/api/v1/gpu",
        "/api/v1/gpu/g1",
        "/api/v1/gpu/g1/bad",
        "/healthz",
        "/",
        "",
        "/API/V1/GPUS",
        "/api/v1/gpus?x=1",
        "api/v1/gpus",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        allowed = 12345;
        assert_int_equal(match(paths[i], AF__M_GET, &allowed, params), -1);
        assert_int_equal(allowed, 0); /* 0 = no pattern matched: 404, not 405 */
    }
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    char allow[64];

    assert_int_equal(match("/api/v1/gpu/g1/metrics", AF__M_POST, &allowed, params), -1);
    assert_int_equal(allowed, AF__M_GET | AF__M_HEAD);
    af__allow_text(allowed, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD");

    assert_int_equal(match("/api/v1/gpus", AF__M_DELETE, &allowed, params), -1);
    af__allow_text(allowed, allow, sizeof(allow));
    assert_string_equal(allow, "GET, POST, HEAD");

    /* POST-only paths offer no HEAD. */
    assert_int_equal(match("/api/v1/workloads/w1/complete", AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed, AF__M_POST);
    af__allow_text(allowed, allow, sizeof(allow));
    assert_string_equal(allow, "POST");
    assert_int_equal(match("/api/v1/inference", AF__M_PUT, &allowed, params), -1);
    af__allow_text(allowed, allow, sizeof(allow));
    assert_string_equal(allow, "POST");

    /* A method the server does not know (mask 0) is 405 too on a known path. */
    assert_int_equal(match("/api/v1/costs", 0, &allowed, params), -1);
    af__allow_text(allowed, allow, sizeof(allow));
    assert_string_equal(allow, "GET, POST, HEAD");
}

static void test_allow_text(void **state)
{
    (void)state;
    char allow[64];
    af__allow_text(0, allow, sizeof(allow));
    assert_string_equal(allow, "");
    af__allow_text(AF__M_GET | AF__M_POST | AF__M_PUT | AF__M_DELETE | AF__M_PATCH | AF__M_OPTIONS |
                       AF__M_HEAD,
                   allow, sizeof(allow));
    assert_string_equal(allow, "GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD");
    /* Fixed order whatever the bits' origin. */
    af__allow_text(AF__M_HEAD | AF__M_OPTIONS | AF__M_GET, allow, sizeof(allow));
    assert_string_equal(allow, "GET, OPTIONS, HEAD");
}

static void test_head(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    /* No route is registered for HEAD: the server matches HEAD as GET (and sends no body), and
     * the matcher advertises HEAD wherever GET is accepted. */
    for (size_t i = 0; i < af__nroutes; i++)
        assert_int_equal(af__routes[i].methods & AF__M_HEAD, 0);
    assert_int_equal(match("/api/v1/gpu/g2/processes", AF__M_HEAD, &allowed, params), -1);
    assert_true(allowed & AF__M_HEAD);
    assert_int_equal(match("/api/v1/gpu/g2/processes", AF__M_GET, &allowed, params),
                     route_index(AF__M_GET, "/api/v1/gpu/{id}/processes"));
    assert_string_equal(params[0], "g2");
    /* HEAD on a POST-only path: 405 with Allow: POST. */
    assert_int_equal(match("/api/v1/alerts/a1/resolve", AF__M_GET, &allowed, params), -1);
    assert_int_equal(allowed & AF__M_HEAD, 0);
}

static void test_params_untouched_without_match(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    strcpy(params[0], "keep0");
    strcpy(params[1], "keep1");
    /* The path matches the pattern (so a scratch copy is filled) but not the method. */
    assert_int_equal(af__route_match("/api/v1/demo/trigger/g/p", AF__M_GET, &allowed, params), -1);
    assert_string_equal(params[0], "keep0");
    assert_string_equal(params[1], "keep1");
}

/* Path parameters are matched as sent, then percent-decoded; a bad escape or %00 names the
 * parameter from the pattern. */
static void test_params_decoded(void **state)
{
    (void)state;
    unsigned allowed;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    int r = af__route_match("/api/v1/demo/trigger/gpu-0/Light%20Inference", AF__M_POST, &allowed,
                            params);
    assert_true(r >= 0);
    char why[160];
    assert_int_equal(af__route_params_decode(r, params, why, sizeof(why)), 0);
    assert_string_equal(params[0], "gpu-0");
    assert_string_equal(params[1], "Light Inference");
    /* '+' is a query convention only; %2F is a value, not a separator. */
    r = af__route_match("/api/v1/demo/trigger/a+b/x%2Fy", AF__M_POST, &allowed, params);
    assert_int_equal(af__route_params_decode(r, params, why, sizeof(why)), 0);
    assert_string_equal(params[0], "a+b");
    assert_string_equal(params[1], "x/y");
    r = af__route_match("/api/v1/demo/trigger/gpu-0/Idle%00", AF__M_POST, &allowed, params);
    assert_int_equal(af__route_params_decode(r, params, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "path parameter pattern"));
    r = af__route_match("/api/v1/workloads/w%zz", AF__M_GET, &allowed, params);
    assert_int_equal(af__route_params_decode(r, params, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "path parameter id"));
}

/* Every route is reachable through its own pattern, with its own method, and its precomputed
 * span names say what the middleware would have formatted. */
static void test_table_consistency(void **state)
{
    (void)state;
    static const struct {
        unsigned m;
        const char *name;
    } names[] = {{AF__M_GET, "GET"},
                 {AF__M_POST, "POST"},
                 {AF__M_PUT, "PUT"},
                 {AF__M_DELETE, "DELETE"},
                 {AF__M_PATCH, "PATCH"}};
    assert_true(af__nroutes > 20);
    for (size_t i = 0; i < af__nroutes; i++) {
        const af__route *r = &af__routes[i];
        const char *mname = NULL;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (r->methods == names[k].m)
                mname = names[k].name;
        assert_non_null(mname); /* exactly one method per entry */
        assert_non_null(r->fn);
        char want[256];
        snprintf(want, sizeof(want), "api_requests.%s %s", mname, r->pattern);
        assert_string_equal(r->span_name, want);
        snprintf(want, sizeof(want), "api_requests.%s", r->name);
        assert_string_equal(r->child_name, want);
        /* Writes need the token (the kube-scheduler extender's unless cluster.extender_auth is
         * off); reads only with server.auth.read. */
        if (strncmp(r->pattern, "/scheduler/", 11) == 0)
            assert_int_equal(r->write, AF__ROUTE_EXTENDER);
        else
            assert_int_equal(r->write, r->methods != AF__M_GET ? AF__ROUTE_WRITE : AF__ROUTE_READ);

        /* Substitute each {x} with p<n> and match it back. */
        char path[256];
        size_t used = 0;
        int np = 0;
        for (const char *p = r->pattern; *p;) {
            if (*p == '{') {
                used += (size_t)snprintf(path + used, sizeof(path) - used, "p%d", np++);
                p = strchr(p, '}') + 1;
            } else {
                path[used++] = *p++;
            }
        }
        path[used] = '\0';
        unsigned allowed;
        char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
        assert_int_equal(match(path, r->methods, &allowed, params), (int)i);
        assert_true(allowed & r->methods);
        for (int k = 0; k < np; k++) {
            char want_p[16];
            snprintf(want_p, sizeof(want_p), "p%d", k);
            assert_string_equal(params[k], want_p);
        }
        /* No (method, pattern) pair twice. */
        for (size_t j = i + 1; j < af__nroutes; j++)
            assert_false(af__routes[j].methods == r->methods &&
                         strcmp(af__routes[j].pattern, r->pattern) == 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Responses.                                                                                */

static const char *body_of(const af__resp *rs, size_t *len)
{
    assert_true(rs->body.len >= AF__RESP_HEADROOM);
    *len = rs->body.len - AF__RESP_HEADROOM;
    return (const char *)rs->body.data + AF__RESP_HEADROOM;
}

/* Parses the body as {"error":{"code","status","message"}} with nothing else in it. */
static void check_error_body(const af__resp *rs, int status, const char *code, const char *msg)
{
    size_t len;
    const char *body = body_of(rs, &len);
    assert_int_equal(rs->status, status);
    assert_string_equal(rs->content_type, "application/json");
    json_error_t err;
    json_t *j = json_loadb(body, len, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %.*s", err.text, (int)len, body);
    assert_true(json_is_object(j));
    assert_int_equal(json_object_size(j), 1);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 3);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_is_integer(json_object_get(e, "status")));
    assert_int_equal(json_integer_value(json_object_get(e, "status")), status);
    if (msg)
        assert_string_equal(json_string_value(json_object_get(e, "message")), msg);
    else
        assert_true(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

static void test_error_body_shape(void **state)
{
    (void)state;
    af__resp rs;
    af__resp_init(&rs);
    assert_int_equal(rs.status, 200);
    size_t len;
    body_of(&rs, &len);
    assert_int_equal(len, 0);

    af__resp_error(&rs, 404, "not_found", "no route for %s", "/x");
    check_error_body(&rs, 404, "not_found", "no route for /x");
    const char *b = body_of(&rs, &len);
    static const char want[] =
        "{\"error\":{\"code\":\"not_found\",\"status\":404,\"message\":\"no route for /x\"}}";
    assert_int_equal(len, sizeof(want) - 1);
    assert_memory_equal(b, want, len);

    /* A second error replaces the first (no concatenation). */
    af__resp_error(&rs, 405, "method_not_allowed", "use GET");
    check_error_body(&rs, 405, "method_not_allowed", "use GET");
    af__resp_free(&rs);
}

static void test_error_message_escaping(void **state)
{
    (void)state;
    af__resp rs;
    af__resp_init(&rs);
    const char *evil = "say \"hi\"\nthen \\ leave\r\t\x01 caf\xc3\xa9";
    af__resp_error(&rs, 400, "invalid_argument", "%s", evil);
    check_error_body(&rs, 400, "invalid_argument", evil);
    size_t len;
    const char *b = body_of(&rs, &len);
    /* The raw body is one line, with the escapes JSON requires. */
    assert_null(memchr(b, '\n', len));
    assert_null(memchr(b, '\r', len));
    assert_null(memchr(b, '\x01', len));
    assert_non_null(strstr(b, "say \\\"hi\\\"\\nthen \\\\ leave\\r\\t\\u0001 caf\xc3\xa9"));

    /* A message longer than the formatting buffer is cut, and stays valid JSON. */
    char big[2048];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    af__resp_error(&rs, 500, "internal", "%s", big);
    check_error_body(&rs, 500, "internal", NULL);
    /* ... also when the cut falls inside a UTF-8 sequence. */
    char utf[2048];
    for (size_t i = 0; i + 2 < sizeof(utf); i += 2) {
        utf[i] = '\xc3';
        utf[i + 1] = '\xa9';
    }
    utf[sizeof(utf) - 2] = '\0';
    af__resp_error(&rs, 500, "internal", "%s", utf);
    check_error_body(&rs, 500, "internal", NULL);
    af__resp_free(&rs);
}

static void test_resp_from_errno(void **state)
{
    (void)state;
    static const struct {
        int err, status;
        const char *code;
    } t[] = {
        {-EINVAL, 400, "invalid_argument"}, {AF_EPARSE, 400, "invalid_argument"},
        {-ENOENT, 404, "not_found"},        {AF_ENOTFOUND, 404, "not_found"},
        {-EEXIST, 409, "conflict"},         {-EBUSY, 409, "conflict"},
        {AF_EFULL, 503, "overloaded"},      {AF_ESHUTDOWN, 503, "shutting_down"},
        {AF_ETIMEDOUT, 504, "timeout"},     {-EHOSTDOWN, 502, "backend_error"},
        {-EIO, 502, "backend_error"},       {-ENOMEM, 500, "internal"},
    };
    af__resp rs;
    af__resp_init(&rs);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        af__resp_from_errno(&rs, t[i].err, "why \"it\" failed");
        check_error_body(&rs, t[i].status, t[i].code, "why \"it\" failed");
        /* No message: the error code's own text. */
        af__resp_from_errno(&rs, t[i].err, NULL);
        check_error_body(&rs, t[i].status, t[i].code, af_strerror(t[i].err));
        af__resp_from_errno(&rs, t[i].err, "");
        check_error_body(&rs, t[i].status, t[i].code, af_strerror(t[i].err));
    }
    af__resp_free(&rs);
}

static void test_resp_json_take(void **state)
{
    (void)state;
    af__resp rs;
    af__resp_init(&rs);
    char *json = malloc(16);
    assert_non_null(json);
    strcpy(json, "{\"ok\":true}");
    af__resp_json_take(&rs, 201, json); /* freed by the call (ASan checks) */
    size_t len;
    const char *b = body_of(&rs, &len);
    assert_int_equal(rs.status, 201);
    assert_int_equal(len, strlen("{\"ok\":true}"));
    assert_memory_equal(b, "{\"ok\":true}", len);
    /* NULL is what a failed json_dumps returns: out of memory, 500. */
    af__resp_json_take(&rs, 200, NULL);
    check_error_body(&rs, 500, "internal", "out of memory");
    af__resp_free(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_routes),
        cmocka_unit_test(test_template_segments),
        cmocka_unit_test(test_template_segment_length),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_unknown_paths_are_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_allow_text),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_params_untouched_without_match),
        cmocka_unit_test(test_params_decoded),
        cmocka_unit_test(test_table_consistency),
        cmocka_unit_test(test_error_body_shape),
        cmocka_unit_test(test_error_message_escaping),
        cmocka_unit_test(test_resp_from_errno),
        cmocka_unit_test(test_resp_json_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
