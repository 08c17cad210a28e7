# The loopback HTTP receiver used by the exporter tests (tests/unit/test_otlp_http.c,
# test_jaeger_export.c) and their shared fork-during-export check are part of af_testutil;
# the receiver serves HTTPS through OpenSSL (libssl-dev). chat_collect.c gathers what a chat
# call produced for the serving tests.
pkg_check_modules(openssl REQUIRED IMPORTED_TARGET openssl)
target_sources(af_testutil PRIVATE ${CMAKE_CURRENT_LIST_DIR}/http_receiver.c
  ${CMAKE_CURRENT_LIST_DIR}/fork_export.c ${CMAKE_CURRENT_LIST_DIR}/chat_collect.c)
target_link_libraries(af_testutil PUBLIC PkgConfig::openssl)
