# Precompiled headers for every C++ target of the project.
#
# Why: CI compiles the project three times on 2 cores (plain, ASan+UBSan, TSan; see
# scripts/test.sh) and every translation unit parsed the same standard library, fmt/spdlog,
# nlohmann/json, libpqxx and GoogleTest headers again: 6 of the 14 s that a typical test file
# took (measured with -fsyntax-only). Two precompiled headers are built once per build tree and
# reused by every target (REUSE_FROM): one for the programs and libraries, one that adds
# GoogleTest/GoogleMock for the tests.
#
# A precompiled header is only valid for files compiled with the same macro definitions and
# code-generation options. Both come from the same place here: every target links the
# libraries the header was built against (that is where -DSPDLOG_COMPILED_LIB, -DFMT_SHARED,
# -DGTEST_HAS_PTHREAD come from) and oss::warnings (-Wpedantic changes predefined macros such
# as __cpp_runtime_arrays), and the sanitizer/optimisation flags are directory-wide. CMake
# adds -Winvalid-pch and our warnings are errors, so a header that stopped matching fails the
# build loudly instead of silently compiling without it. -DOSS_PCH=OFF turns it all off.
option(OSS_PCH "Precompile the common third-party headers (faster builds)" ON)

set(_oss_pch_common
  <algorithm> <array> <atomic> <chrono> <cstddef> <cstdint> <cstdlib> <cstring> <deque>
  <functional> <iostream> <limits> <map> <memory> <mutex> <optional> <set> <sstream>
  <stdexcept> <string> <string_view> <thread> <unordered_map> <utility> <variant> <vector>
  <fmt/format.h> <spdlog/spdlog.h> <nlohmann/json.hpp> <pqxx/pqxx>)
set(_oss_pch_product_libs fmt::fmt spdlog::spdlog nlohmann_json::nlohmann_json PkgConfig::PQXX Threads::Threads oss::warnings)
set(_oss_pch_test_libs ${_oss_pch_product_libs} GTest::gtest GTest::gmock)

# oss_enable_pch(): call once at the end of the top-level CMakeLists.txt, after every target.
function(oss_enable_pch)
  if(NOT OSS_PCH)
    return()
  endif()
  # A precompiled header belongs to a target, and a target needs a source file: the holders are
  # empty libraries that only build the headers the other targets reuse.
  set(_holder_tu ${CMAKE_BINARY_DIR}/oss_pch_holder.cpp)
  file(WRITE ${_holder_tu} "// the one source file of the precompiled-header holder targets (cmake/Pch.cmake)\n")
  add_library(oss_pch_product STATIC ${_holder_tu})
  target_link_libraries(oss_pch_product PRIVATE ${_oss_pch_product_libs})
  target_precompile_headers(oss_pch_product PRIVATE ${_oss_pch_common})
  if(OSS_BUILD_TESTS)
    add_library(oss_pch_test STATIC ${_holder_tu})
    target_link_libraries(oss_pch_test PRIVATE ${_oss_pch_test_libs})
    target_precompile_headers(oss_pch_test PRIVATE ${_oss_pch_common} <gtest/gtest.h> <gmock/gmock.h>)
    # The tests' code may be built at another optimization level (cmake/TestCode.cmake), and a
    # precompiled header only serves files built with the same one.
    get_property(_test_opt GLOBAL PROPERTY OSS_TEST_CODE_OPT_APPLIED)
    if(_test_opt)
      target_compile_options(oss_pch_test PRIVATE ${_test_opt})
    endif()
  endif()

  # GCC 12 loses the "system header" mark of the headers it restores from a precompiled header,
  # so its late (after-inlining) diagnostics inside libstdc++'s std::string code, which it
  # suppresses otherwise, show up: -Warray-bounds / -Wstringop-overflow / -Wstringop-overread
  # false positives of the GCC PR105651/PR105329 family at -O2. They stay warnings, not errors.
  set(_relaxed $<$<CXX_COMPILER_ID:GNU>:-Wno-error=array-bounds -Wno-error=stringop-overflow -Wno-error=stringop-overread>)
  _oss_collect_targets(${PROJECT_SOURCE_DIR} _targets)
  foreach(t IN LISTS _targets)
    get_target_property(_type ${t} TYPE)
    if(NOT _type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$" OR t MATCHES "^oss_pch_")
      continue()
    endif()
    target_compile_options(${t} PRIVATE ${_relaxed})
    get_target_property(_links ${t} LINK_LIBRARIES)
    if(OSS_BUILD_TESTS AND "${_links}" MATCHES "GTest::")
      target_link_libraries(${t} PRIVATE ${_oss_pch_test_libs})
      target_precompile_headers(${t} REUSE_FROM oss_pch_test)
    else()
      target_link_libraries(${t} PRIVATE ${_oss_pch_product_libs})
      target_precompile_headers(${t} REUSE_FROM oss_pch_product)
    endif()
  endforeach()
endfunction()

function(_oss_collect_targets dir out)
  get_property(_here DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(_subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(d IN LISTS _subdirs)
    _oss_collect_targets(${d} _sub)
    list(APPEND _here ${_sub})
  endforeach()
  set(${out} ${_here} PARENT_SCOPE)
endfunction()
