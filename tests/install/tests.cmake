# make install: a consumer builds with pkg-config and with find_package, then runs.
if(NOT AF_SANITIZE AND NOT AF_FUZZ)
  add_test(NAME install.consumer
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/install_test.sh ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(install.consumer PROPERTIES TIMEOUT 300 LABELS install)
endif()
