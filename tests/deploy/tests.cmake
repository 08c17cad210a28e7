# Deploy suite: deploy/kubernetes rendered (the base and overlays/bind) and every object checked
# against the Kubernetes OpenAPI schemas (kubernetes-models, pinned in package-lock.json), plus
# the rules the manifests promise (pinned images, probes, resources, GPU node selector, NODE_NAME
# from spec.nodeName, bind rights only in the overlay, the KubeSchedulerConfiguration's fields,
# deploy/otel-collector.yaml's pipeline). No cluster is needed.
#
#   deploy.npm_ci      fixture setup: `npm ci` when node_modules is missing (needs the registry);
#                      a failed install is reported here and makes the two tests below skip
#   deploy.manifests   tests/deploy/check.js; renders with tests/deploy/render.js and, when
#                      kubectl (kustomize >= v4) is installed, also with `kubectl kustomize`,
#                      and requires both to give the same objects
#   deploy.selftest    breaks the render in known ways and expects each break to be reported
#
# Both tests exit 77 (CTest "Skipped", with the reason printed) when the npm packages are absent.
set(AF_DEPLOY_DIR ${CMAKE_CURRENT_LIST_DIR})

find_program(AF_NODE node)
find_program(AF_NPM npm)
if(NOT AF_NODE OR NOT AF_NPM)
  message(STATUS "deploy tests disabled: node and npm not found")
  return()
endif()
find_program(AF_KUBECTL kubectl)
if(AF_KUBECTL)
  set(af_kubectl_arg ${AF_KUBECTL})
else()
  set(af_kubectl_arg none)
endif()

add_test(NAME deploy.npm_ci
  COMMAND sh -c "test -d node_modules/kubernetes-models || ${AF_NPM} ci --no-audit --no-fund || echo 'deploy.npm_ci: npm ci failed; deploy.manifests and deploy.selftest will be skipped'"
  WORKING_DIRECTORY ${AF_DEPLOY_DIR})
set_tests_properties(deploy.npm_ci PROPERTIES FIXTURES_SETUP deploy_npm TIMEOUT 600
  LABELS deploy)

add_test(NAME deploy.manifests
  COMMAND ${AF_NODE} check.js --root ${CMAKE_SOURCE_DIR} --kubectl ${af_kubectl_arg}
  WORKING_DIRECTORY ${AF_DEPLOY_DIR})
add_test(NAME deploy.selftest
  COMMAND ${AF_NODE} check.js --selftest --root ${CMAKE_SOURCE_DIR}
  WORKING_DIRECTORY ${AF_DEPLOY_DIR})
set_tests_properties(deploy.manifests deploy.selftest PROPERTIES FIXTURES_REQUIRED deploy_npm
  TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS deploy)
