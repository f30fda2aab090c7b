# Builds and runs the consumer project against slabpool.
#   cmake -DMODE=find_package|add_subdirectory|pkg_config -DSOURCE_DIR=<slabpool source>
#         -DCONSUMER_DIR=<dir> -DWORK_DIR=<scratch dir> [-DVERSION=<slabpool's version>]
#         [-DGENERATOR=<g>] [-DC_COMPILER=<cc>] [-DCXX_COMPILER=<c++>] -P run_consumer.cmake
# find_package: configures slabpool into WORK_DIR/build, installs it into WORK_DIR/prefix, then
# builds the consumer with CMAKE_PREFIX_PATH=WORK_DIR/prefix. add_subdirectory: builds the consumer
# with SLABPOOL_SOURCE_DIR pointing at the source tree. pkg_config: installs with
# `cmake --install --prefix` (a prefix other than the configured one), then uses the installed
# slabpool.pc: plain compiler invocations with `pkg-config --cflags --libs slabpool` (main.cpp and
# main.c, shared library) and `--static` (main.cpp, static library), and the consumer project
# through FindPkgConfig's pkg_check_modules(IMPORTED_TARGET). WORK_DIR is removed on success and
# kept (with the failing step's output printed) on failure.
cmake_minimum_required(VERSION 3.25)

foreach(var MODE SOURCE_DIR CONSUMER_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}); work dir kept: ${WORK_DIR}\n"
                        "command: ${ARGN}\n${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

# pkg_config(<out> <arg>...): stdout of pkg-config <arg>... against the installed prefix only.
function(pkg_config out)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir}
                          ${PKG_CONFIG} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE text ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " args)
    message(FATAL_ERROR "pkg-config ${args} failed (${rc}); work dir kept: ${WORK_DIR}\n${err}")
  endif()
  list(JOIN ARGN " " args)
  message(STATUS "pkg-config ${args}: ${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

set(configure_args -DCMAKE_BUILD_TYPE=Release)
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(C_COMPILER)
  list(APPEND configure_args -DCMAKE_C_COMPILER=${C_COMPILER})
endif()
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_build ${WORK_DIR}/consumer-build)

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkg_config")
  set(prefix ${WORK_DIR}/prefix)
  # pkg_config installs with `cmake --install --prefix` to another prefix than the configured
  # one, as the README does: slabpool.pc must name the prefix it was installed to.
  if(MODE STREQUAL "pkg_config")
    set(configured_prefix ${WORK_DIR}/configured-prefix-not-used)
  else()
    set(configured_prefix ${prefix})
  endif()
  run_step("configure slabpool" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
           ${configure_args} -DSLABPOOL_BUILD_TESTS=OFF -DSLABPOOL_BUILD_BENCH=OFF
           -DSLABPOOL_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${configured_prefix})
  run_step("build slabpool" ${CMAKE_COMMAND} --build ${WORK_DIR}/build --parallel 2)
  run_step("install slabpool" ${CMAKE_COMMAND} --install ${WORK_DIR}/build --prefix ${prefix})
  # The consumer must see only the installed copy: drop the build tree before configuring it.
  file(REMOVE_RECURSE ${WORK_DIR}/build)
endif()

if(MODE STREQUAL "find_package")
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${consumer_build}
           ${configure_args} -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "pkg_config")
  find_program(PKG_CONFIG NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "pkg-config is not installed (Debian: apt-get install pkg-config; "
                        "scripts/test installs it)")
  endif()
  file(GLOB_RECURSE pc_file ${prefix}/slabpool.pc)
  list(LENGTH pc_file pc_count)
  if(NOT pc_count EQUAL 1)
    message(FATAL_ERROR "expected one installed slabpool.pc under ${prefix}, found: '${pc_file}'")
  endif()
  cmake_path(GET pc_file PARENT_PATH pc_dir)
  if(DEFINED VERSION)
    pkg_config(version --modversion slabpool)
    if(NOT version STREQUAL VERSION)
      message(FATAL_ERROR "slabpool.pc says version '${version}', the project is ${VERSION}")
    endif()
  endif()
  pkg_config(pc_prefix --variable=prefix slabpool)
  if(NOT pc_prefix STREQUAL prefix)
    message(FATAL_ERROR "slabpool.pc says prefix '${pc_prefix}', installed to '${prefix}'")
  endif()
  pkg_config(cflags --cflags slabpool)
  pkg_config(libs --libs slabpool)
  pkg_config(static_libs --static --libs slabpool)
  pkg_config(libdir --variable=libdir slabpool)
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  separate_arguments(libs UNIX_COMMAND "${libs}")
  separate_arguments(static_libs UNIX_COMMAND "${static_libs}")
  if(NOT CXX_COMPILER)
    set(CXX_COMPILER c++)
  endif()
  # What a user of the .pc writes: the shared library by default; the static one by asking the
  # linker for it around the --static flags (libslabpool.so and libslabpool.a sit side by side).
  # C++20 is the user's to ask for.
  set(main ${CONSUMER_DIR}/main.cpp)
  run_step("compile consumer (pkg-config, shared)" ${CXX_COMPILER} -std=c++20 -O2
           -DCONSUMER_EXPECT_SHARED=1 ${main} ${cflags} ${libs} -ldl
           -o ${WORK_DIR}/pc_consumer_shared)
  run_step("compile consumer (pkg-config --static)" ${CXX_COMPILER} -std=c++20 -O2
           -DCONSUMER_EXPECT_SHARED=0 ${main} ${cflags} -Wl,-Bstatic ${static_libs}
           -Wl,-Bdynamic -ldl -o ${WORK_DIR}/pc_consumer_static)
  if(NOT C_COMPILER)
    set(C_COMPILER cc)
  endif()
  run_step("compile C consumer (pkg-config, shared)" ${C_COMPILER} -O2 ${CONSUMER_DIR}/main.c
           ${cflags} ${libs} -o ${WORK_DIR}/pc_consumer_c)
  run_step("run pc_consumer_shared" ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir}
           ${WORK_DIR}/pc_consumer_shared)
  run_step("run pc_consumer_c" ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir}
           ${WORK_DIR}/pc_consumer_c)
  # The static one must run without the library directory.
  run_step("run pc_consumer_static" ${WORK_DIR}/pc_consumer_static)
  # CMake's FindPkgConfig, looking in CMAKE_PREFIX_PATH like a user's project would.
  run_step("configure consumer (FindPkgConfig)" ${CMAKE_COMMAND} -S ${CONSUMER_DIR}
           -B ${consumer_build} ${configure_args} -DSLABPOOL_VIA_PKG_CONFIG=ON
           -DPKG_CONFIG_EXECUTABLE=${PKG_CONFIG} -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "add_subdirectory")
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${consumer_build}
           ${configure_args} -DSLABPOOL_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run_step("build consumer" ${CMAKE_COMMAND} --build ${consumer_build} --parallel 2)
if(MODE STREQUAL "pkg_config")
  set(consumers consumer_pkg_config)
else()
  set(consumers consumer_shared consumer_static)
endif()
foreach(exe IN LISTS consumers)
  run_step("run ${exe}" ${consumer_build}/${exe})
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
