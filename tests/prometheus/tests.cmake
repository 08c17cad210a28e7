# What operators' tooling expects: the shipped monitoring files (deploy/prometheus rules,
# deploy/grafana dashboard) checked with promtool and against the metrics a running daemon
# exposes, and the original project's health check and page test.
#
#   operating.monitoring   check_operating.sh (skipped without promtool, node or wget)
if(NOT TARGET agentaflow)
  return()
endif()
add_test(NAME operating.monitoring
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_operating.sh $<TARGET_FILE:agentaflow>)
set_tests_properties(operating.monitoring PROPERTIES TIMEOUT 180 LABELS integration
  SKIP_RETURN_CODE 77)
