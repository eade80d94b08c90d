# Packages: `cpack` in a build folder makes
#   libathomic0              runtime library, `athomic` and `athomic-demo`, the local provider
#   athomic-provider-redis   the redis provider
#   libathomic-dev           headers, CMake package, pkg-config files, athomic-conformance (the
#                            provider conformance suite), docs/*.md in /usr/share/doc/athomic
# as .deb files (Debian dependencies computed by dpkg-shlibdeps), and one .tar.gz of everything.
set(CPACK_PACKAGE_NAME athomic)
set(CPACK_PACKAGE_VENDOR athomic)
set(CPACK_PACKAGE_CONTACT "athomic maintainers <maintainers@athomic.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 event bus with plugin transports")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL runtime redis dev)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libathomic0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_REDIS_PACKAGE_NAME athomic-provider-redis)
set(CPACK_DEBIAN_REDIS_PACKAGE_DEPENDS "libathomic0 (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libathomic-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libathomic0 (= ${PROJECT_VERSION}), nlohmann-json3-dev (>= 3.11), libspdlog-dev (>= 1:1.10)")
# Plugins and tools find the library through their RUNPATH; shlibdeps must too.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/${CMAKE_INSTALL_LIBDIR})

set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)  # one tarball with every component
# The tarball is a relocatable tree (bin/, lib/, include/) rather than a copy of /usr.
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/cpack_per_generator.cmake)
include(CPack)
