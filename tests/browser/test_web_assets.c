/*
 * The dashboard page embedded in the library (src/server/web_assets.h): lookup rules, bytes
 * identical to web/, content types, and the page rules that can be checked without a browser
 * (title and section names present, nothing loaded from another host, no innerHTML).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/web_assets.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static void test_lookup_rules(void **state)
{
    (void)state;
    const af_web_asset *index = af__web_asset_lookup("/index.html");
    assert_non_null(index);
    assert_string_equal(index->content_type, "text/html; charset=utf-8");
    /* "/" and "" are the page itself; the leading slash is optional. */
    assert_ptr_equal(af__web_asset_lookup("/"), index);
    assert_ptr_equal(af__web_asset_lookup(""), index);
    assert_ptr_equal(af__web_asset_lookup("index.html"), index);
    /* A query string or fragment does not change the asset. */
    assert_ptr_equal(af__web_asset_lookup("/?v=2"), index);
    const af_web_asset *app = af__web_asset_lookup("/app.js?v=1#x");
    assert_non_null(app);
    assert_string_equal(app->path, "/app.js");
    assert_string_equal(app->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(af__web_asset_lookup("/style.css")->content_type,
                        "text/css; charset=utf-8");
    /* Only exact names: no prefixes, no traversal, no directories. */
    assert_null(af__web_asset_lookup(NULL));
    assert_null(af__web_asset_lookup("/nope.js"));
    assert_null(af__web_asset_lookup("/app.j"));
    assert_null(af__web_asset_lookup("/app.jsx"));
    assert_null(af__web_asset_lookup("/../web/index.html"));
    assert_null(af__web_asset_lookup("//index.html"));
    assert_null(af__web_asset_lookup("/api/v1/gpus"));
}

/* Every embedded asset is byte-for-byte the file under web/, NUL-terminated. */
static void test_bytes_match_sources(void **state)
{
    (void)state;
    size_t n = 0;
    const af_web_asset *a = af__web_assets(&n);
    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s%s", AF_WEB_DIR, a[i].path);
        size_t len = 0;
        char *src = read_file(path, &len);
        if (!src)
            fail_msg("cannot read %s", path);
        assert_int_equal(a[i].len, len);
        assert_memory_equal(a[i].data, src, len);
        assert_int_equal(a[i].data[a[i].len], 0);
        assert_ptr_equal(af__web_asset_lookup(a[i].path), &a[i]);
        free(src);
    }
}

static bool contains(const af_web_asset *a, const char *needle)
{
    return strstr((const char *)a->data, needle) != NULL;
}

static void test_page_rules(void **state)
{
    (void)state;
    const af_web_asset *index = af__web_asset_lookup("/");
    assert_true(contains(index, "<title>AgentaFlow GPU Monitoring</title>"));
    assert_true(contains(index, "GPU Performance Metrics"));
    assert_true(contains(index, "Cost Analytics"));
    size_t n = 0;
    const af_web_asset *a = af__web_assets(&n);
    for (size_t i = 0; i < n; i++) {
        /* Works offline: nothing is fetched from another host (no CDN, no web font). */
        const char *bad[] = {"src=\"http", "href=\"http", "src=\"//",  "href=\"//",
                             "@import",    "url(http",    "@font-face"};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
            if (contains(&a[i], bad[k]))
                fail_msg("%s contains %s", a[i].path, bad[k]);
        /* Data reaches the DOM only as text. */
        const char *html_sinks[] = {"innerHTML", "outerHTML", "insertAdjacentHTML",
                                    "document.write"};
        if (strstr(a[i].path, ".js"))
            for (size_t k = 0; k < sizeof html_sinks / sizeof html_sinks[0]; k++)
                if (contains(&a[i], html_sinks[k]))
                    fail_msg("%s uses %s", a[i].path, html_sinks[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_rules),
        cmocka_unit_test(test_bytes_match_sources),
        cmocka_unit_test(test_page_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
