# slabpool.pc for pkg-config users, beside the CMake package (included from the root
# CMakeLists.txt's install block, after GNUInstallDirs), like mimalloc's and jemalloc's:
#   Libs: -L${libdir} -lslabpool    Libs.private: -pthread    Cflags: -I${includedir}
# C++ users add -std=c++20 themselves (see cmake/slabpool.pc.in and README.md).
#
# The file is written at install time from cmake/slabpool.pc.in, so its prefix is the one
# actually installed to: `cmake --install build --prefix DIR` writes DIR, not the configured
# CMAKE_INSTALL_PREFIX (and DESTDIR stays out of it, as staged installs need).
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(slabpool_pc_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(slabpool_pc_${kind} "\${exec_prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
string(REPLACE "\${exec_prefix}/${CMAKE_INSTALL_INCLUDEDIR}" "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}"
       slabpool_pc_INCLUDEDIR "${slabpool_pc_INCLUDEDIR}")

set(slabpool_pc_file ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/slabpool.pc)
install(CODE "
  set(PROJECT_VERSION [==[${PROJECT_VERSION}]==])
  set(SLABPOOL_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(SLABPOOL_PC_LIBDIR [==[${slabpool_pc_LIBDIR}]==])
  set(SLABPOOL_PC_INCLUDEDIR [==[${slabpool_pc_INCLUDEDIR}]==])
  configure_file([==[${CMAKE_CURRENT_LIST_DIR}/slabpool.pc.in]==] [==[${slabpool_pc_file}]==]
                 @ONLY)
")
install(FILES ${slabpool_pc_file} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
