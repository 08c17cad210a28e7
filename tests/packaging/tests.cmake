# Packaging: what `make deb` ships and the systemd units in it.
#
#   packaging.systemd_units  systemd-analyze verify on packaging/systemd/*.service, run on
#                            copies that start the built binary (skipped without systemd)
if(NOT TARGET agentaflow)
  return()
endif()

add_test(NAME packaging.systemd_units
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/verify_units.sh $<TARGET_FILE:agentaflow>
    ${CMAKE_SOURCE_DIR}/packaging/systemd)
set_tests_properties(packaging.systemd_units PROPERTIES TIMEOUT 60 LABELS packaging
  SKIP_RETURN_CODE 77)
