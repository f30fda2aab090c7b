# slabpool_add_test: the one way a test is registered with ctest (included by tests/CMakeLists.txt,
# which has found GTest and Threads and included GoogleTest).
#
#   slabpool_add_test(<name>
#     LABELS <label>...           ctest labels (scripts/test selects tests by them)
#     [SOURCES <file>...]         build executable <name> from these; without SOURCES, <name> is an
#                                 existing target (or, with COMMAND, only the test's name)
#     [LIBRARIES <lib>...]        what it links instead of slabpool::slabpool_static
#     [DEFINITIONS <def>...]      compile definitions
#     [INCLUDES <dir>...]         more include directories
#     [INTERNAL]                  white-box test: may include the core's internal headers
#                                 (allocator/src and each folder under it)
#     [NO_DISCOVER]               a plain program, not GoogleTest: one ctest test
#                                 <group>.<TEST_NAME> running the executable with ARGS, or COMMAND
#     [TEST_NAME <test>]          with NO_DISCOVER: the test's name after "<group>." (default <name>)
#     [ARGS <arg>...]             with NO_DISCOVER: arguments of the executable
#     [COMMAND <cmd> <arg>...]    with NO_DISCOVER: run this instead of the executable
#     [GROUP <group>]             ctest names start with "<group>."; default: the folder's name
#     [VARIANT <variant>]         and then "<variant>." (one source built twice, e.g. shared/static)
#     [TIMEOUT <seconds>]         ctest's hang guard for each test
#     [ENVIRONMENT <VAR=value>...]
#     [PROPERTIES <property> <value>...])  more ctest properties (RUN_SERIAL, SKIP_RETURN_CODE, ...)
#
# ctest names: "<group>.[<variant>.]<Suite>.<Case>" for GoogleTest executables, where every case
# runs in its own process (gtest_discover_tests), so process-wide options, fake clocks and
# injected failures never leak from one case into another; "<group>.[<variant>.]<TEST_NAME>" for
# plain programs. Executables built here link GoogleTest's main (not with NO_DISCOVER), Threads,
# slabpool_warnings and slabpool_test_common, which puts tests/ on the include path so shared
# helpers are included as "common/<helper>.hpp".

add_library(slabpool_test_common INTERFACE)
target_include_directories(slabpool_test_common INTERFACE ${CMAKE_CURRENT_LIST_DIR}/..)

# The core's internal headers, for white-box tests: allocator/src and every folder under it (the
# core keeps one folder per layer), so `#include "size_class.hpp"` resolves wherever it lives.
function(slabpool_internal_include_dirs out)
  set(root ${PROJECT_SOURCE_DIR}/allocator/src)
  set(dirs ${root})
  file(GLOB_RECURSE entries LIST_DIRECTORIES true CONFIGURE_DEPENDS ${root}/*)
  list(SORT entries)
  foreach(entry IN LISTS entries)
    if(IS_DIRECTORY ${entry})
      list(APPEND dirs ${entry})
    endif()
  endforeach()
  set(${out} ${dirs} PARENT_SCOPE)
endfunction()

function(slabpool_add_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "INTERNAL;NO_DISCOVER"
    "TEST_NAME;GROUP;VARIANT;TIMEOUT"
    "SOURCES;LIBRARIES;DEFINITIONS;INCLUDES;LABELS;ARGS;COMMAND;ENVIRONMENT;PROPERTIES")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "slabpool_add_test(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_LABELS)
    message(FATAL_ERROR "slabpool_add_test(${name}): LABELS is required")
  endif()
  if((arg_COMMAND OR arg_TEST_NAME OR arg_ARGS) AND NOT arg_NO_DISCOVER)
    message(FATAL_ERROR "slabpool_add_test(${name}): COMMAND, TEST_NAME and ARGS need NO_DISCOVER")
  endif()

  if(arg_SOURCES)
    add_executable(${name} ${arg_SOURCES})
    if(NOT DEFINED arg_LIBRARIES)
      set(arg_LIBRARIES slabpool::slabpool_static)
    endif()
    target_link_libraries(${name} PRIVATE ${arg_LIBRARIES} Threads::Threads slabpool_warnings
                          slabpool_test_common)
    if(NOT arg_NO_DISCOVER)
      target_link_libraries(${name} PRIVATE GTest::gtest_main)
    endif()
    target_compile_definitions(${name} PRIVATE ${arg_DEFINITIONS})
    target_include_directories(${name} PRIVATE ${arg_INCLUDES})
    if(arg_INTERNAL)
      slabpool_internal_include_dirs(internal_dirs)
      target_include_directories(${name} PRIVATE ${internal_dirs})
    endif()
  elseif(arg_LIBRARIES OR arg_DEFINITIONS OR arg_INCLUDES OR arg_INTERNAL)
    message(FATAL_ERROR "slabpool_add_test(${name}): LIBRARIES, DEFINITIONS, INCLUDES and "
                        "INTERNAL apply to an executable built from SOURCES")
  endif()

  if(NOT arg_GROUP)
    cmake_path(GET CMAKE_CURRENT_SOURCE_DIR FILENAME arg_GROUP)
  endif()
  set(prefix "${arg_GROUP}.")
  if(arg_VARIANT)
    string(APPEND prefix "${arg_VARIANT}.")
  endif()

  # Property name/value pairs; a value may be a list (two labels, several variables), so each pair
  # is applied on its own rather than flattened into one argument list.
  set(names LABELS)
  set(value_LABELS "${arg_LABELS}")
  if(arg_TIMEOUT)
    list(APPEND names TIMEOUT)
    set(value_TIMEOUT "${arg_TIMEOUT}")
  endif()
  if(arg_ENVIRONMENT)
    list(APPEND names ENVIRONMENT)
    set(value_ENVIRONMENT "${arg_ENVIRONMENT}")
  endif()
  list(LENGTH arg_PROPERTIES count)
  math(EXPR odd "${count} % 2")
  if(odd)
    message(FATAL_ERROR "slabpool_add_test(${name}): PROPERTIES takes name/value pairs")
  endif()
  while(arg_PROPERTIES)
    list(POP_FRONT arg_PROPERTIES property value)
    list(APPEND names ${property})
    set(value_${property} "${value}")
  endwhile()

  if(arg_NO_DISCOVER)
    if(NOT arg_TEST_NAME)
      set(arg_TEST_NAME ${name})
    endif()
    if(arg_COMMAND)
      set(command ${arg_COMMAND})
    else()
      set(command ${name} ${arg_ARGS})
    endif()
    add_test(NAME ${prefix}${arg_TEST_NAME} COMMAND ${command})
    foreach(property IN LISTS names)
      set_tests_properties(${prefix}${arg_TEST_NAME} PROPERTIES ${property} "${value_${property}}")
    endforeach()
  else()
    # gtest_discover_tests flattens list-valued PROPERTIES (a second label became a property
    # name), so the properties are set by a script ctest includes right after the discovered
    # tests, on the list of their names.
    gtest_discover_tests(${name} TEST_PREFIX "${prefix}" DISCOVERY_TIMEOUT 60
                         TEST_LIST ${name}_TESTS)
    set(script "if(${name}_TESTS)\n")
    foreach(property IN LISTS names)
      string(APPEND script "  set_tests_properties(\${${name}_TESTS} PROPERTIES ${property} "
                           "[==[${value_${property}}]==])\n")
    endforeach()
    string(APPEND script "endif()\n")
    set(script_file ${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake)
    file(GENERATE OUTPUT ${script_file} CONTENT "${script}")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${script_file})
  endif()
endfunction()
