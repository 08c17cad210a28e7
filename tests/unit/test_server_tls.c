/*
 * The server's TLS options in-process: what af_server_new and af_server_reload_tls answer for
 * incomplete or unusable settings, and that the error names the file. The handshake paths are
 * exercised against the daemon in tests/integration/test_tls.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentaflow/server.h"
#include "testutil.h"

static void opts_for_test(af_server_opts *o)
{
    af_server_opts_init(o);
    o->port = 0;
    o->metrics_port = -1;
    o->event_loops = 1;
    o->workers = 1;
}

static int new_server(af_server_opts *o, char *err, size_t cap)
{
    af_server *s = NULL;
    int rc = af_server_new(o, &s, err, cap);
    af_server_free(s);
    return rc;
}

static void test_cert_without_key(void **state)
{
    (void)state;
    af_server_opts o;
    opts_for_test(&o);
    o.tls_cert_file = "/etc/agentaflow/server.pem";
    char err[512] = "";
    assert_int_equal(new_server(&o, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "server.tls.key_file"));
}

static void test_client_ca_without_cert(void **state)
{
    (void)state;
    af_server_opts o;
    opts_for_test(&o);
    o.tls_client_ca_file = "/etc/agentaflow/ca.pem";
    char err[512] = "";
    assert_int_equal(new_server(&o, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "server.tls.cert_file"));
}

static void test_missing_file_is_named(void **state)
{
    (void)state;
    af_server_opts o;
    opts_for_test(&o);
    o.tls_cert_file = "/nonexistent/af-server.pem";
    o.tls_key_file = "/nonexistent/af-server.key";
    char err[512] = "";
    assert_int_equal(new_server(&o, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "/nonexistent/af-server.pem"));
    assert_non_null(strstr(err, strerror(ENOENT)));
}

/* A file that is not PEM: the message names it and carries OpenSSL's reason. */
static void test_garbage_certificate(void **state)
{
    (void)state;
    char path[] = "/tmp/af-tls-unit-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    af_server_opts o;
    opts_for_test(&o);
    o.tls_cert_file = path;
    o.tls_key_file = path;
    char err[512] = "";
    assert_int_equal(new_server(&o, err, sizeof(err)), -EINVAL);
    unlink(path);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "certificate"));
    assert_null(strstr(err, "unknown OpenSSL error"));
}

static void test_reload_without_tls(void **state)
{
    (void)state;
    af_server_opts o;
    opts_for_test(&o);
    af_server *s = NULL;
    char err[512] = "";
    assert_int_equal(af_server_new(&o, &s, err, sizeof(err)), 0);
    assert_int_equal(af_server_reload_tls(s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not configured"));
    af_server_free(s);
    assert_int_equal(af_server_reload_tls(NULL, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_without_key),      cmocka_unit_test(test_client_ca_without_cert),
        cmocka_unit_test(test_missing_file_is_named), cmocka_unit_test(test_garbage_certificate),
        cmocka_unit_test(test_reload_without_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
