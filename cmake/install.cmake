# Installing the programs and packaging them as .deb (docs/operations/server.md and agent.md,
# "Installing from the .deb packages"; tests/package_test.sh). The client library's and headers'
# install rules are elsewhere; this file covers the three programs, their man pages, example
# configs, systemd units and the CPack .deb packages:
#
#   component  package        contents
#   server     airlockd       airlockd, its man page, unit, /etc/airlock/airlockd.toml, user airlock
#   cli        airlock        the developer CLI and its man page (laptops and CI need no server)
#   agent      airlock-agent  the device agent, its man page, unit, example config, user airlock-agent
#
# `cmake --install build --prefix P` puts the binaries in P/bin, man pages in P/share/man, examples
# in P/share/doc/airlock/examples, units in P/lib/systemd/system and airlockd.toml in P/etc/airlock
# (/etc/airlock when P is /usr, as GNUInstallDirs does for sysconfdir). Build first: man pages are
# generated from each program's --help by help2man at build time (target airlock_man, in ALL).
include(GNUInstallDirs)

set(AIRLOCK_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS airlockd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(TARGETS airlock RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
install(TARGETS airlock-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)

# Man pages from --help. help2man runs each freshly built program, so cross builds get none.
find_program(HELP2MAN_PROGRAM help2man)
if(HELP2MAN_PROGRAM)
  set(airlock_man_pages "")
  foreach(spec "airlockd|8|the Airlock update server|server"
               "airlock|1|sign, encrypt and ship over-the-air updates|cli"
               "airlock-agent|8|the Airlock update agent for devices|agent")
    string(REPLACE "|" ";" spec "${spec}")
    list(GET spec 0 prog)
    list(GET spec 1 section)
    list(GET spec 2 summary)
    list(GET spec 3 component)
    set(page ${CMAKE_BINARY_DIR}/man/${prog}.${section})
    add_custom_command(
      OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${HELP2MAN_PROGRAM} --no-info --no-discard-stderr --section=${section}
              --name=${summary} --version-string=${PROJECT_VERSION}
              --include=${AIRLOCK_PACKAGING_DIR}/man/${prog}.h2m --output=${page}
              $<TARGET_FILE:${prog}>
      COMMAND gzip -9nf ${page}
      DEPENDS ${prog} ${AIRLOCK_PACKAGING_DIR}/man/${prog}.h2m
      COMMENT "help2man ${prog}.${section}"
      VERBATIM)
    list(APPEND airlock_man_pages ${page}.gz)
    install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
            COMPONENT ${component})
  endforeach()
  add_custom_target(airlock_man ALL DEPENDS ${airlock_man_pages})
else()
  message(STATUS "help2man not found: no man pages (scripts/setup.sh installs it)")
endif()

# Example configs, where Debian users look for them.
install(FILES ${AIRLOCK_PACKAGING_DIR}/airlockd.toml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT server)
install(FILES ${AIRLOCK_PACKAGING_DIR}/agent.toml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT agent)

# systemd units. lib/systemd/system below the prefix: /usr/lib/systemd/system in the packages.
install(FILES ${AIRLOCK_PACKAGING_DIR}/systemd/airlockd.service
        DESTINATION lib/systemd/system COMPONENT server)
install(FILES ${AIRLOCK_PACKAGING_DIR}/systemd/airlock-agent.service
        DESTINATION lib/systemd/system COMPONENT agent)

# airlockd's default settings. The destination is decided at install time: cpack installs with the
# prefix /usr (CPACK_SET_DESTDIR below), so the packages get /etc/airlock/airlockd.toml; any other
# prefix gets PREFIX/etc/airlock. file(INSTALL) honours DESTDIR.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(airlock_etc \"/etc/airlock\")
  else()
    set(airlock_etc \"\${CMAKE_INSTALL_PREFIX}/etc/airlock\")
  endif()
  file(INSTALL DESTINATION \"\${airlock_etc}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${AIRLOCK_PACKAGING_DIR}/airlockd.toml\")
" COMPONENT server)

# --- CPack: one .deb per component ---------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME airlock)
set(CPACK_PACKAGE_VENDOR "Airlock")
set(CPACK_PACKAGE_CONTACT "Airlock maintainers <airlock@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Secure over-the-air updates")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# Components packaged; a component added elsewhere (e.g. the client library) joins this list.
set(CPACK_COMPONENTS_ALL server cli agent)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME airlockd)
set(CPACK_COMPONENT_SERVER_DESCRIPTION
    "Airlock update server\n airlockd serves signed TUF metadata and sealed update bundles to devices.")
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "airlock")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    ${AIRLOCK_PACKAGING_DIR}/deb/airlockd/conffiles ${AIRLOCK_PACKAGING_DIR}/deb/airlockd/postinst
    ${AIRLOCK_PACKAGING_DIR}/deb/airlockd/prerm ${AIRLOCK_PACKAGING_DIR}/deb/airlockd/postrm)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME airlock)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION devel)
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "Airlock developer CLI\n airlock signs, encrypts and publishes releases and administers airlockd.")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME airlock-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION
    "Airlock update agent\n airlock-agent verifies and installs updates on a device, with rollback.")
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${AIRLOCK_PACKAGING_DIR}/deb/airlock-agent/postinst
    ${AIRLOCK_PACKAGING_DIR}/deb/airlock-agent/prerm
    ${AIRLOCK_PACKAGING_DIR}/deb/airlock-agent/postrm)

include(CPack)
