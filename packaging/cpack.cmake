# Packages: `cpack` in a build folder makes
#   libathomic0              the runtime library and the local provider
#   athomic-tools            `athomic` and `athomic-demo`
#   athomic-provider-redis   the redis provider
#   libathomic-dev           headers, CMake package, pkg-config files, athomic-conformance (the
#                            provider conformance suite), docs/*.md in /usr/share/doc/athomic
# as .deb files (libraries in /usr/lib/<multiarch triplet>; Debian dependencies computed by
# dpkg-shlibdeps), and one .tar.gz of everything.
set(CPACK_PACKAGE_NAME athomic)
set(CPACK_PACKAGE_VENDOR athomic)
set(CPACK_PACKAGE_CONTACT "athomic maintainers <maintainers@athomic.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "C++20 event bus with plugin transports")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR "DEB;TGZ")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL runtime tools redis dev)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libathomic0)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME athomic-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libathomic0 (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_REDIS_PACKAGE_NAME athomic-provider-redis)
set(CPACK_DEBIAN_REDIS_PACKAGE_DEPENDS "libathomic0 (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libathomic-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libathomic0 (= ${PROJECT_VERSION}), nlohmann-json3-dev (>= 3.11), libspdlog-dev (>= 1:1.10)")
# Plugins and tools find the library through their RUNPATH; shlibdeps must too.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/${CMAKE_INSTALL_LIBDIR})

# One description each: the first line is the package's summary (cpack_per_generator.cmake
# keeps CPackDeb from putting the project's summary above it).
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "C++20 event bus with plugin transports - runtime library
libathomic lets the components of a service publish and subscribe to named
events, each handler running in its publisher's execution context (trace id,
tenant id). The transport is a provider plugin chosen in settings.toml; this
package holds the library and the in-process provider, local.")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION "C++20 event bus with plugin transports - command-line tools
athomic: the bus from the shell, with the settings an application reads -
publish, listen (JSON lines), config (every value with its origin), doctor,
stats (a running service's metrics) and bench. athomic-demo: the
UserService/AuditService example.")
set(CPACK_DEBIAN_REDIS_DESCRIPTION "C++20 event bus with plugin transports - Redis provider
Carries athomic events over Redis Pub/Sub, so the instances of a service share
one bus (backend redis in settings.toml). Speaks RESP itself: no client
library needed.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "C++20 event bus with plugin transports - development files
Headers, the CMake package (find_package(athomic)) and pkg-config files for
applications and provider plugins; the provider SDK; athomic-conformance, the
suite every provider passes; and the architecture, configuration and
provider-writing guides.")

set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)  # one tarball with every component
# The tarball is a relocatable tree (bin/, lib/, include/) rather than a copy of /usr.
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/cpack_per_generator.cmake)
include(CPack)
