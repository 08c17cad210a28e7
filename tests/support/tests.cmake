# The loopback HTTP receiver used by the exporter tests (tests/unit/test_otlp_http.c,
# test_jaeger_export.c) is part of af_testutil; it serves HTTPS through OpenSSL (libssl-dev).
pkg_check_modules(openssl REQUIRED IMPORTED_TARGET openssl)
target_sources(af_testutil PRIVATE ${CMAKE_CURRENT_LIST_DIR}/http_receiver.c)
target_link_libraries(af_testutil PUBLIC PkgConfig::openssl)
