# The examples run and do what they say: tracing_demo makes the document's spans.
add_test(NAME example.tracing_demo
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/tracing_demo_test.sh $<TARGET_FILE:tracing_demo>)
set_tests_properties(example.tracing_demo PROPERTIES TIMEOUT 120 LABELS example)

# The README quick start, taken from README.md itself so the two cannot drift, built and run
# as C11, C++17 and C++20 (one spelling of AF_ATTRS for both languages). It exports to a
# closed loopback port: the test is that it compiles and that shutdown stays bounded.
file(READ ${CMAKE_SOURCE_DIR}/README.md af_readme)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/README.md)
string(FIND "${af_readme}" "## Quick start in C" af_qs)
if(af_qs LESS 0)
  message(FATAL_ERROR "README.md: no \"## Quick start in C\" section for tests/examples")
endif()
string(SUBSTRING "${af_readme}" ${af_qs} -1 af_qs_text)
string(FIND "${af_qs_text}" "```c\n" af_qs_begin)
string(SUBSTRING "${af_qs_text}" ${af_qs_begin} -1 af_qs_text)
string(SUBSTRING "${af_qs_text}" 5 -1 af_qs_text)
string(FIND "${af_qs_text}" "```" af_qs_end)
string(SUBSTRING "${af_qs_text}" 0 ${af_qs_end} af_qs_code)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.tmp "${af_qs_code}")
configure_file(${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.tmp
  ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.c COPYONLY)
configure_file(${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.tmp
  ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.cpp COPYONLY)

set(af_qs_env "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9;OTEL_EXPORTER_OTLP_TIMEOUT=2000")
add_executable(readme_quickstart_c ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.c)
target_link_libraries(readme_quickstart_c PRIVATE agentaflow_static)
add_test(NAME example.readme_quickstart_c COMMAND readme_quickstart_c)
set_tests_properties(example.readme_quickstart_c PROPERTIES TIMEOUT 60 LABELS example
  ENVIRONMENT "${af_qs_env}")

# C++ is enabled for these targets only; without a C++ compiler they are left out.
include(CheckLanguage)
check_language(CXX)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
  # The project's warning flags apply to C++ too, less the two that exist only for C.
  macro(af_cxx_target tgt std)
    set_target_properties(${tgt} PROPERTIES
      CXX_STANDARD ${std} CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    get_target_property(af_cxx_opts ${tgt} COMPILE_OPTIONS)
    list(REMOVE_ITEM af_cxx_opts -Wstrict-prototypes -Wmissing-prototypes)
    set_target_properties(${tgt} PROPERTIES COMPILE_OPTIONS "${af_cxx_opts}")
    target_link_libraries(${tgt} PRIVATE agentaflow_static)
  endmacro()
  # Every public header as C++11 (building it is the check).
  add_library(af_all_headers_cxx11 OBJECT ${CMAKE_CURRENT_LIST_DIR}/all_headers.cpp)
  af_cxx_target(af_all_headers_cxx11 11)
  foreach(std 17 20)
    add_executable(readme_quickstart_cxx${std} ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.cpp)
    af_cxx_target(readme_quickstart_cxx${std} ${std})
    add_test(NAME example.readme_quickstart_cxx${std} COMMAND readme_quickstart_cxx${std})
    set_tests_properties(example.readme_quickstart_cxx${std} PROPERTIES TIMEOUT 60
      LABELS example ENVIRONMENT "${af_qs_env}")
  endforeach()
else()
  message(STATUS "No C++ compiler: the README quick start is not built as C++")
endif()

# Two units including trace.h under GNU89 inline semantics must link (static inline).
add_executable(gnu89_inline ${CMAKE_CURRENT_LIST_DIR}/gnu89_inline_a.c
  ${CMAKE_CURRENT_LIST_DIR}/gnu89_inline_b.c)
target_compile_options(gnu89_inline PRIVATE -fgnu89-inline)
target_link_libraries(gnu89_inline PRIVATE agentaflow_static)
add_test(NAME example.gnu89_inline COMMAND gnu89_inline)
set_tests_properties(example.gnu89_inline PROPERTIES TIMEOUT 60 LABELS example)
