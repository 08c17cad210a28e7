# Third-party libraries, all from Debian packages (scripts/install-deps.sh installs them).
# Each is found through pkg-config and exposed as an imported target in AF_DEP_TARGETS.
set(AF_DEP_TARGETS)
set(AF_PKG_REQUIRES)
foreach(dep libcurl zlib yaml-0.1 jansson libprotobuf-c libwebsockets sqlite3)
  string(MAKE_C_IDENTIFIER ${dep} id)
  pkg_check_modules(${id} REQUIRED IMPORTED_TARGET ${dep})
  list(APPEND AF_DEP_TARGETS PkgConfig::${id})
  list(APPEND AF_PKG_REQUIRES ${dep})
endforeach()
string(REPLACE ";" ", " AF_PKG_REQUIRES "${AF_PKG_REQUIRES}")
