# Browser suite: the dashboard page in headless Chromium (Debian's /usr/bin/chromium, driven
# by playwright-core pinned in package-lock.json) against the real daemon on ephemeral ports.
#
#   browser.assets      the embedded page: lookup rules and bytes equal to web/ (C, no browser)
#   browser.npm_ci      fixture setup: `npm ci` when node_modules is missing (needs the registry)
#   browser.dashboard   tests/browser/dashboard.test.js; screenshots in <build>/browser/*.png
#
# browser.dashboard is skipped (CTest "Skipped", exit code 77) when chromium is not installed.
set(AF_BROWSER_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(test_web_assets ${AF_BROWSER_DIR}/test_web_assets.c)
target_link_libraries(test_web_assets PRIVATE af_testutil)
target_compile_definitions(test_web_assets PRIVATE AF_WEB_DIR="${CMAKE_SOURCE_DIR}/web")
add_test(NAME browser.assets COMMAND test_web_assets)
set_tests_properties(browser.assets PROPERTIES TIMEOUT 60 LABELS browser)

find_program(AF_NODE node)
find_program(AF_NPM npm)
if(NOT AF_NODE OR NOT AF_NPM)
  message(STATUS "browser test disabled: node and npm not found")
  return()
endif()
if(NOT TARGET agentaflow)
  message(STATUS "browser test disabled: no daemon (app/agentaflow) to test against")
  return()
endif()

add_test(NAME browser.npm_ci
  COMMAND sh -c "test -d node_modules/playwright-core || ${AF_NPM} ci --no-audit --no-fund"
  WORKING_DIRECTORY ${AF_BROWSER_DIR})
set_tests_properties(browser.npm_ci PROPERTIES FIXTURES_SETUP browser_npm TIMEOUT 600
  LABELS browser)

add_test(NAME browser.dashboard
  COMMAND ${AF_NODE} ${AF_BROWSER_DIR}/dashboard.test.js
          --bin $<TARGET_FILE:agentaflow> --out ${CMAKE_BINARY_DIR}/browser
  WORKING_DIRECTORY ${AF_BROWSER_DIR})
set_tests_properties(browser.dashboard PROPERTIES FIXTURES_REQUIRED browser_npm TIMEOUT 300
  SKIP_RETURN_CODE 77 LABELS browser)
