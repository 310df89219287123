# Debian packages through CPack: netvigil-agent and netvigil-collector (the
# latter with the `netvigil` CLI). `cpack -G DEB` in the build folder writes
#   netvigil-agent_<version>-1_<arch>.deb and netvigil-collector_<version>-1_<arch>.deb
# Maintainer scripts are generated from deploy/debian/*.in with the shared
# shell functions of deploy/debian/common.sh.in pasted in, so each package is
# self-contained.

set(NETVIGIL_DEPLOY ${CMAKE_SOURCE_DIR}/deploy)
# Units go where Debian 12's systemd packages put theirs.
set(NETVIGIL_UNIT_DIR /lib/systemd/system)

install(TARGETS netvigil-agent RUNTIME DESTINATION bin COMPONENT agent)
install(FILES ${NETVIGIL_DEPLOY}/systemd/netvigil-agent.service
  DESTINATION ${NETVIGIL_UNIT_DIR} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  COMPONENT agent)
install(FILES ${NETVIGIL_DEPLOY}/debian/netvigil-agent.default
  DESTINATION /etc/default RENAME netvigil-agent
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT agent)

install(TARGETS netvigil-collector netvigil RUNTIME DESTINATION bin
  COMPONENT collector)
install(FILES ${NETVIGIL_DEPLOY}/systemd/netvigil-collector.service
  DESTINATION ${NETVIGIL_UNIT_DIR} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
  COMPONENT collector)
# The example is the installed config: every key with its default.
install(FILES ${NETVIGIL_DEPLOY}/collector.yaml DESTINATION /etc/netvigil
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ COMPONENT collector)
install(FILES ${NETVIGIL_DEPLOY}/collector.yaml
  DESTINATION share/doc/netvigil-collector RENAME collector.yaml.example
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT collector)

# Maintainer scripts and conffiles, per package.
file(READ ${NETVIGIL_DEPLOY}/debian/common.sh.in NETVIGIL_DEB_COMMON)
set(netvigil_deb_dir ${CMAKE_BINARY_DIR}/debian)
foreach(pkg agent collector)
  set(extra "")
  foreach(script postinst prerm postrm)
    configure_file(${NETVIGIL_DEPLOY}/debian/netvigil-${pkg}.${script}.in
      ${netvigil_deb_dir}/${pkg}/${script} @ONLY)
    list(APPEND extra ${netvigil_deb_dir}/${pkg}/${script})
  endforeach()
  list(APPEND extra ${netvigil_deb_dir}/${pkg}/conffiles)
  string(TOUPPER ${pkg} PKG)
  set(CPACK_DEBIAN_${PKG}_PACKAGE_CONTROL_EXTRA "${extra}")
endforeach()
file(WRITE ${netvigil_deb_dir}/agent/conffiles "/etc/default/netvigil-agent\n")
file(WRITE ${netvigil_deb_dir}/collector/conffiles "/etc/netvigil/collector.yaml\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME netvigil)
set(CPACK_PACKAGE_VENDOR netvigil)
set(CPACK_PACKAGE_CONTACT "netvigil maintainers <netvigil@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Debug info stays in the build folder: the .deb files are a third the size.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent collector)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Libraries from dpkg-shlibdeps; the rest by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
# Maintainer scripts 0755 and control files 0644, as lintian expects.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME netvigil-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "iperf3, adduser")
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "systemd")
set(CPACK_COMPONENT_AGENT_DESCRIPTION
  "netvigil agent: path, sockets, files and speed probes of one LAN host\n"
  "Runs mtr-, ss-, lsof- and iperf3-like probes natively on a schedule the\n"
  "collector sends and streams the results to it; an iperf3 server for peers.")

set(CPACK_DEBIAN_COLLECTOR_PACKAGE_NAME netvigil-collector)
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_DEPENDS "postgresql, adduser")
set(CPACK_DEBIAN_COLLECTOR_PACKAGE_RECOMMENDS "systemd")
set(CPACK_COMPONENT_COLLECTOR_DESCRIPTION
  "netvigil collector and CLI: home network health history in PostgreSQL\n"
  "Keeps every agent's results, compares them with their history and across\n"
  "hosts, raises alerts; the `netvigil` command queries it.")

include(CPack)
