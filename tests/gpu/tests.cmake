# GPU metrics through the NVML backend's real dlopen path, against a fake libnvidia-ml built
# here (tests/gpu/fake_nvml.c). The test gets the library's path at compile time.
add_library(fake_nvml SHARED ${CMAKE_CURRENT_LIST_DIR}/fake_nvml.c)
set_target_properties(fake_nvml PROPERTIES OUTPUT_NAME fake_nvml
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

add_executable(test_gpu_nvml ${CMAKE_CURRENT_LIST_DIR}/test_gpu_nvml.c)
target_link_libraries(test_gpu_nvml PRIVATE af_testutil)
target_compile_definitions(test_gpu_nvml PRIVATE
  FAKE_NVML_PATH="$<TARGET_FILE:fake_nvml>")
add_dependencies(test_gpu_nvml fake_nvml)
add_test(NAME gpu.test_gpu_nvml COMMAND test_gpu_nvml)
set_tests_properties(gpu.test_gpu_nvml PROPERTIES TIMEOUT 120 LABELS unit)
