# Integration suite: the real agentaflow daemon on ephemeral loopback ports.
#
#   integration.daemon.routes   test_daemon_routes: read/write/error routes, HTTP framing,
#                               /metrics, auth
#   integration.daemon.ws       test_daemon_ws: the /ws push channel, fan-out, stalled clients,
#                               the client cap
#   integration.daemon.overload test_daemon_overload: max_inflight 503s and graceful stop
#   integration.daemon.cli      test_daemon_cli: the subcommands' output and exit codes
#   integration.daemon.tracing  test_daemon_tracing: middleware spans, B3 in, OTLP propagation
#                               decoded by decode_spans.js (interop node_modules)
#   integration.tls          test_tls (cmocka): both listeners over TLS with certificates from a
#                            throw-away CA made by the openssl command, mutual TLS, SIGHUP
#                            reload, bad files (skipped without openssl)
#   integration.hostile_http test_hostile_http (cmocka): the security review's findings, raw
#                            TCP where curl would normalise the request
#   integration.websocket    test_websocket (cmocka): /ws handshake refusals, RFC 6455 close
#                            codes, ping/pong, fragments, and no log lines for bad upgrades
#   integration.reload       test_reload (cmocka): SIGHUP applies a rewritten configuration
#                            and keeps the running one when the new file is broken
#   integration.hostile_limits
#                            test_hostile_limits (cmocka): megabyte strings, thousands of names
#                            and slow inference against the limits (docs/security.md)
#   integration.systemd      test_systemd (cmocka): sd_notify as systemd sees it (READY after
#                            the listeners answer, WATCHDOG, RELOADING, STOPPING, STATUS) and
#                            $CONFIGURATION_DIRECTORY/agentaflow.yaml as the default config
#   integration.cluster      test_cluster_fleet (cmocka; test_cluster.c, the unit test has
#                            its name): serve --cluster with three agents, the extender, bind
#                            against a stand-in Kubernetes API
#   integration.cluster_restart
#                            test_cluster_restart (cmocka): serve --cluster restarted on its
#                            data directory; inventory and reservations back, agents re-report
#   integration.prometheus   promtool check metrics on our exposition, then a real Prometheus
#                            scraping the daemon until its target is up (skipped without them)
if(NOT TARGET agentaflow)
  return()
endif()

# The harness every daemon test links: process control, HTTP, WebSocket and raw TCP clients.
add_library(af_it_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.c)
target_include_directories(af_it_harness PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(af_it_harness PUBLIC af_testutil)

# test_daemon.c split by feature: one program and one ctest each, so a failure names its area
# and the areas run in parallel.
foreach(area routes ws overload cli tracing)
  add_executable(test_daemon_${area} ${CMAKE_CURRENT_LIST_DIR}/test_daemon_${area}.c)
  target_link_libraries(test_daemon_${area} PRIVATE af_it_harness)
  add_test(NAME integration.daemon.${area} COMMAND test_daemon_${area} $<TARGET_FILE:agentaflow>)
  set_tests_properties(integration.daemon.${area} PROPERTIES TIMEOUT 300 LABELS integration)
endforeach()

# Only the tracing program decodes spans with node (the interop suite's node_modules).
find_program(AF_IT_NODE node)
set_tests_properties(integration.daemon.tracing PROPERTIES
  ENVIRONMENT "AF_NODE=${AF_IT_NODE};AF_DECODE_SCRIPT=${CMAKE_CURRENT_LIST_DIR}/decode_spans.js")
if(AF_IT_NODE AND TEST interop.npm_ci)
  set_tests_properties(integration.daemon.tracing PROPERTIES FIXTURES_REQUIRED interop_npm)
endif()

add_executable(test_tls ${CMAKE_CURRENT_LIST_DIR}/test_tls.c)
target_link_libraries(test_tls PRIVATE af_it_harness)
add_test(NAME integration.tls COMMAND test_tls $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.tls PROPERTIES TIMEOUT 300 LABELS integration
  SKIP_RETURN_CODE 77)
add_executable(test_websocket ${CMAKE_CURRENT_LIST_DIR}/test_websocket.c)
target_link_libraries(test_websocket PRIVATE af_it_harness)
add_test(NAME integration.websocket COMMAND test_websocket $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.websocket PROPERTIES TIMEOUT 120 LABELS integration)

add_executable(test_hostile_limits ${CMAKE_CURRENT_LIST_DIR}/test_hostile_limits.c)
target_link_libraries(test_hostile_limits PRIVATE af_it_harness)
add_test(NAME integration.hostile_limits COMMAND test_hostile_limits $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.hostile_limits PROPERTIES TIMEOUT 300 LABELS integration)

add_test(NAME integration.prometheus
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/prometheus_scrape.sh $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.prometheus PROPERTIES TIMEOUT 180 LABELS integration
  SKIP_RETURN_CODE 77)

# The security review's hostile requests (issue 10): one test per finding.
add_executable(test_hostile_http ${CMAKE_CURRENT_LIST_DIR}/test_hostile_http.c)
target_link_libraries(test_hostile_http PRIVATE af_it_harness)
add_test(NAME integration.hostile_http COMMAND test_hostile_http $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.hostile_http PROPERTIES TIMEOUT 300 LABELS integration)

# integration.durability: SIGKILL rounds under concurrent writes (every acknowledged write is
# there exactly once after each restart), a second daemon, unusable and damaged data
# directories, a full disk (RLIMIT_FSIZE on the running daemon).
add_executable(test_durability ${CMAKE_CURRENT_LIST_DIR}/test_durability.c)
target_link_libraries(test_durability PRIVATE af_it_harness)
add_test(NAME integration.durability COMMAND test_durability $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.durability PROPERTIES TIMEOUT 300 LABELS integration)

add_executable(test_systemd ${CMAKE_CURRENT_LIST_DIR}/test_systemd.c)
target_link_libraries(test_systemd PRIVATE af_it_harness)
add_test(NAME integration.systemd COMMAND test_systemd $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.systemd PROPERTIES TIMEOUT 120 LABELS integration)

# The cluster scheduler and three agents on loopback: the kube-scheduler extender per strategy,
# an agent killed, hostile ExtenderArgs, and bind against an HTTPS stand-in Kubernetes API.
add_executable(test_cluster_fleet ${CMAKE_CURRENT_LIST_DIR}/test_cluster.c)
target_link_libraries(test_cluster_fleet PRIVATE af_it_harness)
add_test(NAME integration.cluster COMMAND test_cluster_fleet $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.cluster PROPERTIES TIMEOUT 300 LABELS integration)

# The cluster scheduler restarted (SIGTERM, then SIGKILL) on its data directory with three
# agents: inventory and reservations come back, the agents report again.
add_executable(test_cluster_restart ${CMAKE_CURRENT_LIST_DIR}/test_cluster_restart.c)
target_link_libraries(test_cluster_restart PRIVATE af_it_harness)
add_test(NAME integration.cluster_restart COMMAND test_cluster_restart $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.cluster_restart PROPERTIES TIMEOUT 300 LABELS integration)

# SIGHUP configuration reload (issue 15): ratio, exporter endpoint, a toggle, log format,
# restart-only keys, and a broken file that keeps the running configuration.
add_executable(test_reload ${CMAKE_CURRENT_LIST_DIR}/test_reload.c)
target_link_libraries(test_reload PRIVATE af_it_harness)
add_test(NAME integration.reload COMMAND test_reload $<TARGET_FILE:agentaflow>)
set_tests_properties(integration.reload PROPERTIES TIMEOUT 120 LABELS integration)
