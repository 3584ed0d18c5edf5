# Warnings for our own code only, as an INTERFACE target (spdlog/userver style).
option(OSS_WERROR "Treat warnings as errors in our code" ON)
add_library(oss_warnings INTERFACE)
target_compile_options(oss_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  # -Wnull-dereference is left out: at -O2 it fires inside inlined Boost.Asio code.
  -Woverloaded-virtual -Wconversion -Wsign-conversion -Wdouble-promotion
  -Wformat=2 -Wimplicit-fallthrough
  # GCC 12 at -O3 (Release) reports -Wrestrict inside std::string assignments of literals
  # (GCC PR105651) and -Wmaybe-uninitialized on std::string members of aggregates built in
  # place (PR107919-like): false positives inside libstdc++ headers, so they stay warnings.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-error=restrict -Wno-error=maybe-uninitialized>
  $<$<BOOL:${OSS_WERROR}>:-Werror>)
add_library(oss::warnings ALIAS oss_warnings)
if(OSS_SANITIZE MATCHES "thread")
  # GCC 12 warns that Asio's atomic_thread_fence is not instrumented by TSan; not our code.
  target_compile_options(oss_warnings INTERFACE -Wno-error=tsan -Wno-tsan)
endif()
