# airlock_test(NAME SOURCES... LIBS lib...) builds one GoogleTest executable for a module and registers
# every test in it with CTest. Every *_test.cc it compiles is recorded, so the BuildsEveryTestFile check
# (tests/check_tests_built.cmake) can fail when a test file exists that no target compiles.
set_property(GLOBAL PROPERTY AIRLOCK_TEST_SOURCES "")

function(airlock_test name)
  if(NOT AIRLOCK_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name} PRIVATE
    AIRLOCK_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    AIRLOCK_VECTORS_DIR="${PROJECT_SOURCE_DIR}/tests/vectors")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    PROPERTIES ENVIRONMENT "AIRLOCK_BIN_DIR=${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  foreach(src ${ARG_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    set_property(GLOBAL APPEND PROPERTY AIRLOCK_TEST_SOURCES ${abs})
  endforeach()
endfunction()

function(airlock_write_test_registry)
  get_property(srcs GLOBAL PROPERTY AIRLOCK_TEST_SOURCES)
  list(SORT srcs)
  string(REPLACE ";" "\n" content "${srcs}")
  file(WRITE ${CMAKE_BINARY_DIR}/registered_tests.txt "${content}\n")
endfunction()
