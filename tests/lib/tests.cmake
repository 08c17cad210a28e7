# The libraries as artifacts (issue 12): layering, what the shared objects export, and that
# they load with dlopen() from C and from Python.
set(AF_LIB_TESTS ${CMAKE_CURRENT_LIST_DIR})

# src/trace + src/util alone, with nothing but libc and pthread.
add_executable(test_trace_alone ${AF_LIB_TESTS}/trace_alone.c
  $<TARGET_OBJECTS:af_layer_trace> $<TARGET_OBJECTS:af_layer_util>)
target_include_directories(test_trace_alone PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_trace_alone PRIVATE Threads::Threads)
add_test(NAME lib.trace_alone COMMAND test_trace_alone)

add_test(NAME lib.layers COMMAND sh ${AF_LIB_TESTS}/check_layers.sh ${CMAKE_C_COMPILER}
  ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})

add_test(NAME lib.shared_objects COMMAND sh ${AF_LIB_TESTS}/check_shared.sh
  $<TARGET_FILE:agentaflow_shared> $<TARGET_FILE:agentaflow_platform_shared>
  ${CMAKE_SOURCE_DIR}/include/agentaflow)

# Loads the libraries with dlopen(); it links libdl and pthread only.
add_executable(test_dlopen_sdk ${AF_LIB_TESTS}/dlopen_sdk.c)
target_include_directories(test_dlopen_sdk PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_dlopen_sdk PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_dependencies(test_dlopen_sdk agentaflow_shared agentaflow_platform_shared)
add_test(NAME lib.dlopen_c COMMAND test_dlopen_sdk $<TARGET_FILE:agentaflow_shared>
  $<TARGET_FILE:agentaflow_platform_shared>)

add_test(NAME lib.dlopen_python COMMAND sh ${AF_LIB_TESTS}/dlopen_python.sh
  $<TARGET_FILE:agentaflow_shared>)
# A sanitizer-instrumented library cannot be loaded into an uninstrumented interpreter.
set_tests_properties(lib.dlopen_python PROPERTIES SKIP_RETURN_CODE 77 LABELS "lib;nosan"
  TIMEOUT 120)

set_tests_properties(lib.trace_alone lib.layers lib.shared_objects lib.dlopen_c
  PROPERTIES TIMEOUT 120 LABELS lib)
