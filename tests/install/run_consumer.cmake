# Builds and runs the consumer project against slabpool.
#   cmake -DMODE=find_package|add_subdirectory -DSOURCE_DIR=<slabpool source> -DCONSUMER_DIR=<dir>
#         -DWORK_DIR=<scratch dir> [-DGENERATOR=<g>] [-DC_COMPILER=<cc>] [-DCXX_COMPILER=<c++>]
#         -P run_consumer.cmake
# find_package: configures slabpool into WORK_DIR/build, installs it into WORK_DIR/prefix, then
# builds the consumer with CMAKE_PREFIX_PATH=WORK_DIR/prefix. add_subdirectory: builds the consumer
# with SLABPOOL_SOURCE_DIR pointing at the source tree. WORK_DIR is removed on success and kept
# (with the failing step's output printed) on failure.
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

if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run_step("configure slabpool" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
           ${configure_args} -DSLABPOOL_BUILD_TESTS=OFF -DSLABPOOL_BUILD_BENCH=OFF
           -DSLABPOOL_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${prefix})
  run_step("build slabpool" ${CMAKE_COMMAND} --build ${WORK_DIR}/build --parallel 2)
  run_step("install slabpool" ${CMAKE_COMMAND} --install ${WORK_DIR}/build)
  # The consumer must see only the installed copy: drop the build tree before configuring it.
  file(REMOVE_RECURSE ${WORK_DIR}/build)
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${consumer_build}
           ${configure_args} -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "add_subdirectory")
  run_step("configure consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${consumer_build}
           ${configure_args} -DSLABPOOL_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run_step("build consumer" ${CMAKE_COMMAND} --build ${consumer_build} --parallel 2)
foreach(exe consumer_shared consumer_static)
  run_step("run ${exe}" ${consumer_build}/${exe})
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
