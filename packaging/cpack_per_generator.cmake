# Read by CPack once per generator.
if(CPACK_GENERATOR STREQUAL "TGZ")
  set(CPACK_PACKAGING_INSTALL_PREFIX "/")
endif()
# Each .deb's summary is the first line of its own CPACK_DEBIAN_<COMPONENT>_DESCRIPTION;
# CPackDeb would put this project-wide one above it.
if(CPACK_GENERATOR STREQUAL "DEB")
  unset(CPACK_PACKAGE_DESCRIPTION_SUMMARY)
endif()
