# cmake -DAGENTAFLOW=<binary> -DDOC=<committed file> -DOUT=<scratch file> -P check_config_docs.cmake
# Regenerates docs/configuration.md into OUT and fails, saying how to fix it, when the
# committed file differs: the key table is the source, the file only its rendering.
execute_process(COMMAND ${AGENTAFLOW} config docs
  OUTPUT_FILE ${OUT} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "'agentaflow config docs' failed (${rc}): ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUT} ${DOC} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR
    "docs/configuration.md is out of date with the key table (src/config/keys.c).\n"
    "Regenerate it with `make docs` (or `build/bin/agentaflow config docs > "
    "docs/configuration.md`) and commit the result. Generated version: ${OUT}")
endif()
