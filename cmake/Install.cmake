# make install: headers, both libraries, a pkg-config file and a CMake package config.
include(CMakePackageConfigHelpers)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/agentaflow DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS agentaflow_static agentaflow_shared EXPORT agentaflowTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET agentaflow)
  install(TARGETS agentaflow RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT agentaflowTargets NAMESPACE agentaflow::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/agentaflow)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/agentaflowConfig.cmake.in
  ${CMAKE_BINARY_DIR}/agentaflowConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/agentaflow)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/agentaflowConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/agentaflowConfig.cmake ${CMAKE_BINARY_DIR}/agentaflowConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/agentaflow)
file(RELATIVE_PATH AF_PC_PREFIX_REL ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_SOURCE_DIR}/cmake/agentaflow.pc.in ${CMAKE_BINARY_DIR}/agentaflow.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/agentaflow.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
