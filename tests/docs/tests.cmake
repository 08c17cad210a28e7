# Generated documentation that is committed must match its generator.
#
#   docs.configuration   `agentaflow config docs` (the key table) against docs/configuration.md
if(NOT TARGET agentaflow)
  return()
endif()

add_test(NAME docs.configuration
  COMMAND ${CMAKE_COMMAND} -DAGENTAFLOW=$<TARGET_FILE:agentaflow>
    -DDOC=${CMAKE_SOURCE_DIR}/docs/configuration.md
    -DOUT=${CMAKE_CURRENT_BINARY_DIR}/configuration.md.generated
    -P ${CMAKE_CURRENT_LIST_DIR}/check_config_docs.cmake)
set_tests_properties(docs.configuration PROPERTIES TIMEOUT 60 LABELS docs)
