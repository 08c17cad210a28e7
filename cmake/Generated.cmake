# Code generated at build time: protobuf-c sources for the OTLP subset in proto/.
#
# protoc-c runs once per build for all .proto files (they import each other) and writes
# ${CMAKE_BINARY_DIR}/generated/<package path>/<name>.pb-c.{c,h}. AF_PROTO_SOURCES lists
# the .c files; only the unit tests compile them (the library writes and reads OTLP itself). The custom target af_generated owns the outputs; every
# target that compiles against the generated headers depends on it (see the deferred call at
# the end), so no compile can start before generation finishes.
find_program(AF_PROTOC_C protoc-c REQUIRED)

set(AF_PROTO_DIR ${CMAKE_SOURCE_DIR}/proto)
set(AF_GENERATED_DIR ${CMAKE_BINARY_DIR}/generated)
set(AF_PROTO_FILES
  opentelemetry/proto/common/v1/common.proto
  opentelemetry/proto/resource/v1/resource.proto
  opentelemetry/proto/trace/v1/trace.proto
  opentelemetry/proto/collector/trace/v1/trace_service.proto
  google/rpc/status.proto)

set(AF_PROTO_SOURCES)
set(AF_GENERATED_HEADERS)
set(af_proto_abs)
foreach(proto ${AF_PROTO_FILES})
  string(REGEX REPLACE "\\.proto$" "" stem ${proto})
  list(APPEND AF_PROTO_SOURCES ${AF_GENERATED_DIR}/${stem}.pb-c.c)
  list(APPEND AF_GENERATED_HEADERS ${AF_GENERATED_DIR}/${stem}.pb-c.h)
  list(APPEND af_proto_abs ${AF_PROTO_DIR}/${proto})
endforeach()

file(MAKE_DIRECTORY ${AF_GENERATED_DIR})
add_custom_command(
  OUTPUT ${AF_PROTO_SOURCES} ${AF_GENERATED_HEADERS}
  COMMAND ${AF_PROTOC_C} --proto_path=${AF_PROTO_DIR} --c_out=${AF_GENERATED_DIR} ${AF_PROTO_FILES}
  DEPENDS ${af_proto_abs}
  WORKING_DIRECTORY ${AF_PROTO_DIR}
  COMMENT "protoc-c: generating OTLP protobuf-c sources"
  VERBATIM)
add_custom_target(af_generated DEPENDS ${AF_PROTO_SOURCES} ${AF_GENERATED_HEADERS})
set_source_files_properties(${AF_PROTO_SOURCES} ${AF_GENERATED_HEADERS}
  PROPERTIES GENERATED TRUE)

# Runs after the whole tree is configured: every executable or library defined in the
# top-level directory or below (unit tests, benchmarks, interop fixture, the daemon) may
# include a generated header, so each waits for af_generated.
function(af_generated_add_dependencies dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    if(NOT t STREQUAL "af_generated" AND type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|MODULE_LIBRARY)$")
      add_dependencies(${t} af_generated)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    af_generated_add_dependencies(${sub})
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL af_generated_add_dependencies ${CMAKE_SOURCE_DIR})
