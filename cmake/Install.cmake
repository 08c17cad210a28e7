# make install: headers, both libraries (static and shared), and for each a pkg-config file
# (agentaflow, agentaflow-platform) and a CMake package (find_package(agentaflow),
# find_package(agentaflow-platform)).
include(CMakePackageConfigHelpers)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/agentaflow DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET agentaflow)
  install(TARGETS agentaflow RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
file(RELATIVE_PATH AF_PC_PREFIX_REL ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})

# af_install_package(<package> <static target> <shared target>)
function(af_install_package pkg static shared)
  install(TARGETS ${static} ${shared} EXPORT ${pkg}Targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set(dir ${CMAKE_INSTALL_LIBDIR}/cmake/${pkg})
  install(EXPORT ${pkg}Targets NAMESPACE agentaflow:: DESTINATION ${dir})
  configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/${pkg}Config.cmake.in
    ${CMAKE_BINARY_DIR}/${pkg}Config.cmake INSTALL_DESTINATION ${dir})
  write_basic_package_version_file(${CMAKE_BINARY_DIR}/${pkg}ConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
  install(FILES ${CMAKE_BINARY_DIR}/${pkg}Config.cmake ${CMAKE_BINARY_DIR}/${pkg}ConfigVersion.cmake
    DESTINATION ${dir})
  configure_file(${CMAKE_SOURCE_DIR}/cmake/${pkg}.pc.in ${CMAKE_BINARY_DIR}/${pkg}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${pkg}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

af_install_package(agentaflow agentaflow_static agentaflow_shared)
af_install_package(agentaflow-platform agentaflow_platform_static agentaflow_platform_shared)
