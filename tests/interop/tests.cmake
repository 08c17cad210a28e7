# Interop suite: our OTLP protobuf/JSON and Jaeger Thrift bytes decoded by independent
# implementations (the OpenTelemetry JS generated protobuf code and thriftrw with the
# jaeger-client IDL; versions pinned in package-lock.json).
#
#   interop.npm_ci    fixture setup: `npm ci` when node_modules is missing (needs the registry)
#   interop.fixture   fixture setup: interop_fixture writes the three encoded files
#   interop.otlp_proto / interop.otlp_json / interop.jaeger_thrift   node decoders
set(AF_INTEROP_DIR ${CMAKE_CURRENT_LIST_DIR})
set(AF_INTEROP_OUT ${CMAKE_CURRENT_BINARY_DIR}/interop-fixtures)

add_executable(interop_fixture ${AF_INTEROP_DIR}/interop_fixture.c)
target_include_directories(interop_fixture PRIVATE ${CMAKE_SOURCE_DIR}/src
  ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(interop_fixture PRIVATE agentaflow_platform_static)

find_program(AF_NODE node)
find_program(AF_NPM npm)
if(NOT AF_NODE OR NOT AF_NPM)
  message(STATUS "interop tests disabled: node and npm not found")
  return()
endif()

add_test(NAME interop.npm_ci
  COMMAND sh -c "test -d node_modules || ${AF_NPM} ci --no-audit --no-fund"
  WORKING_DIRECTORY ${AF_INTEROP_DIR})
set_tests_properties(interop.npm_ci PROPERTIES FIXTURES_SETUP interop_npm TIMEOUT 600
  LABELS interop)

add_test(NAME interop.fixture
  COMMAND sh -c "mkdir -p '${AF_INTEROP_OUT}' && '$<TARGET_FILE:interop_fixture>' '${AF_INTEROP_OUT}'")
set_tests_properties(interop.fixture PROPERTIES FIXTURES_SETUP interop_files TIMEOUT 60
  LABELS interop)

foreach(t otlp_proto otlp_json jaeger_thrift)
  if(t STREQUAL "otlp_proto")
    set(args decode_otlp.js proto ${AF_INTEROP_OUT}/otlp.pb)
  elseif(t STREQUAL "otlp_json")
    set(args decode_otlp.js json ${AF_INTEROP_OUT}/otlp.json)
  else()
    set(args decode_jaeger.js ${AF_INTEROP_OUT}/jaeger.thrift)
  endif()
  add_test(NAME interop.${t} COMMAND ${AF_NODE} ${args} WORKING_DIRECTORY ${AF_INTEROP_DIR})
  set_tests_properties(interop.${t} PROPERTIES
    FIXTURES_REQUIRED "interop_npm;interop_files" TIMEOUT 120 LABELS interop)
endforeach()
