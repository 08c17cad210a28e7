# Packaging: what `make deb` ships and the systemd units in it.
#
#   packaging.deb            make deb's package: contents, control data, the unpacked program
#                            runs; man pages render without groff warnings
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

# make deb: the package's files, control data and conffiles, then the unpacked program runs
# `version` and `config check` on the shipped example; man pages render without warnings.
# Not under sanitizers: the package is built from a release-style install.
if(NOT AF_SANITIZE AND NOT AF_FUZZ)
  add_test(NAME packaging.deb
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/deb_test.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(packaging.deb PROPERTIES TIMEOUT 300 LABELS packaging
    SKIP_RETURN_CODE 77)
endif()
