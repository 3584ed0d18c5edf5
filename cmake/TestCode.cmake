# Optimization of the test code itself in builds without sanitizers.
#
# Why: CI compiles the test code (unit, integration and end-to-end tests, their support
# libraries) in the plain tree: 283 of its 565 s of compiler time (2026-12-07, .ninja_log). At
# -O2 that time goes into optimizing GoogleTest, gmock and nlohmann/json instantiations that
# run once. The product's libraries and programs stay at the build type's level (-O2 for
# RelWithDebInfo): the unit tests call product code compiled as it ships, and the integration
# tests start the shipped programs. Only what the test translation units compile themselves
# (test bodies, fixtures, header-only templates they instantiate) is built at OSS_TEST_CODE_OPT.
# Sanitizer trees already build everything at OSS_SANITIZE_OPT (cmake/Sanitizers.cmake).
# -DOSS_TEST_CODE_OPT= (empty) builds the test code like the rest.
set(OSS_TEST_CODE_OPT "-O0" CACHE STRING "Optimization of test code in builds without sanitizers (empty: as the build type)")

# oss_test_code_options(): call once at the end of the top-level CMakeLists.txt, after every
# target (and before oss_enable_pch, whose test header holder must match the tests' flags).
function(oss_test_code_options)
  if(OSS_SANITIZE OR NOT OSS_TEST_CODE_OPT OR NOT OSS_BUILD_TESTS)
    return()
  endif()
  set_property(GLOBAL PROPERTY OSS_TEST_CODE_OPT_APPLIED ${OSS_TEST_CODE_OPT})
  _oss_test_code_targets(${PROJECT_SOURCE_DIR})
endfunction()

function(_oss_test_code_targets dir)
  get_property(_here DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS _here)
    get_target_property(_type ${t} TYPE)
    if(NOT _type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      continue()
    endif()
    get_target_property(_links ${t} LINK_LIBRARIES)
    # Test code is what links GoogleTest (test executables, oss_test_support, the pipeline
    # fixture); the benchmarks link Google Benchmark and keep the build type's optimization.
    if("${_links}" MATCHES "GTest::")
      target_compile_options(${t} PRIVATE ${OSS_TEST_CODE_OPT})
    endif()
  endforeach()
  get_property(_subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(d IN LISTS _subdirs)
    _oss_test_code_targets(${d})
  endforeach()
endfunction()
