# Third-party libraries, all from Debian packages (scripts/install-deps.sh installs them).
# Each is found through pkg-config and exposed as an imported target PkgConfig::<name>.
#
# AF_SDK_PKGS: what libagentaflow (util, trace, export, config) may use, and nothing more.
# AF_PLATFORM_PKGS: what libagentaflow-platform (gpu, serving, cost, server) adds.
# libprotobuf-c is only the unit tests' oracle for the OTLP bytes; no library links it.
set(AF_SDK_PKGS libcurl zlib yaml-0.1)
set(AF_PLATFORM_PKGS jansson openssl)
set(AF_TEST_PKGS libprotobuf-c)

foreach(group SDK PLATFORM TEST)
  set(AF_${group}_DEP_TARGETS)
  foreach(dep ${AF_${group}_PKGS})
    string(MAKE_C_IDENTIFIER ${dep} id)
    pkg_check_modules(${id} REQUIRED IMPORTED_TARGET ${dep})
    list(APPEND AF_${group}_DEP_TARGETS PkgConfig::${id})
  endforeach()
  # Requires.private lines of the pkg-config files.
  string(REPLACE ";" ", " AF_${group}_PKG_REQUIRES "${AF_${group}_PKGS}")
endforeach()
