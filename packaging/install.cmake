# Install layout (GNUInstallDirs), CMake package and pkg-config files. Relocatable: nothing
# below embeds an absolute build or install path.
include(CMakePackageConfigHelpers)

set(ATHOMIC_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/${ATHOMIC_PLUGIN_SUBDIR})
set(ATHOMIC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/athomic)

install(TARGETS athomic_sdk EXPORT athomicTargets COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/include/athomic DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT dev)
install(TARGETS athomic_runtime EXPORT athomicTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/athomic
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
# athomic::asio: no file of its own (athomic/asio.hpp is among the headers above), only the
# usage requirements of an Asio application.
install(TARGETS athomic_asio EXPORT athomicTargets COMPONENT dev)
install(TARGETS athomic_provider_local LIBRARY DESTINATION ${ATHOMIC_INSTALL_PLUGINDIR}
        COMPONENT runtime)
if(TARGET athomic_provider_redis)
  install(TARGETS athomic_provider_redis LIBRARY DESTINATION ${ATHOMIC_INSTALL_PLUGINDIR}
          COMPONENT redis)
endif()
foreach(tool athomic user_audit_demo)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  endif()
endforeach()
# The provider conformance suite and the documentation a provider author works from go with the
# SDK (the -dev package); CMAKE_INSTALL_DOCDIR is share/doc/athomic.
if(TARGET athomic_conformance)
  install(TARGETS athomic_conformance RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dev)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/docs/ARCHITECTURE.md ${PROJECT_SOURCE_DIR}/docs/CONFIGURATION.md
              ${PROJECT_SOURCE_DIR}/docs/WRITING_A_PROVIDER.md ${PROJECT_SOURCE_DIR}/docs/BENCHMARKS.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/config/settings.toml ${PROJECT_SOURCE_DIR}/config/redis.toml
              ${PROJECT_SOURCE_DIR}/config/nats-cluster.toml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/athomic/config COMPONENT runtime)

install(EXPORT athomicTargets NAMESPACE athomic:: DESTINATION ${ATHOMIC_INSTALL_CMAKEDIR}
        COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/athomicConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/athomicConfig.cmake
  INSTALL_DESTINATION ${ATHOMIC_INSTALL_CMAKEDIR}
  PATH_VARS ATHOMIC_INSTALL_PLUGINDIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/athomicConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/athomicConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/athomicConfigVersion.cmake
        DESTINATION ${ATHOMIC_INSTALL_CMAKEDIR} COMPONENT dev)
# pkg-config files locate the prefix relative to themselves.
file(RELATIVE_PATH ATHOMIC_PC_PREFIX_REL "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/athomic.pc.in ${CMAKE_CURRENT_BINARY_DIR}/athomic.pc @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/athomic-sdk.pc.in ${CMAKE_CURRENT_BINARY_DIR}/athomic-sdk.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/athomic.pc ${CMAKE_CURRENT_BINARY_DIR}/athomic-sdk.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
