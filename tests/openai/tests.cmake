# The official openai npm client (versions pinned in package-lock.json) against the real
# daemon's OpenAI-compatible front door and a loopback OpenAI-compatible backend; spans
# decoded with the interop suite's node_modules.
#
#   openai.npm_ci    fixture setup: `npm ci` when node_modules is missing (needs the registry)
#   openai.client    gateway.test.js (node's test runner)
if(NOT TARGET agentaflow)
  return()
endif()
find_program(AF_OPENAI_NODE node)
find_program(AF_OPENAI_NPM npm)
if(NOT AF_OPENAI_NODE OR NOT AF_OPENAI_NPM OR NOT TEST interop.npm_ci)
  message(STATUS "openai client tests disabled: node, npm or the interop suite missing")
  return()
endif()
set(AF_OPENAI_DIR ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME openai.npm_ci
  COMMAND sh -c "test -d node_modules || ${AF_OPENAI_NPM} ci --no-audit --no-fund"
  WORKING_DIRECTORY ${AF_OPENAI_DIR})
set_tests_properties(openai.npm_ci PROPERTIES FIXTURES_SETUP openai_npm TIMEOUT 600
  LABELS interop)
add_test(NAME openai.client
  COMMAND ${AF_OPENAI_NODE} --test-reporter=spec ${AF_OPENAI_DIR}/gateway.test.js
          $<TARGET_FILE:agentaflow>
  WORKING_DIRECTORY ${AF_OPENAI_DIR})
set_tests_properties(openai.client PROPERTIES FIXTURES_REQUIRED "openai_npm;interop_npm"
  TIMEOUT 180 LABELS interop)
