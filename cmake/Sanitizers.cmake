# OSS_SANITIZE: "" (off), "address,undefined" or "thread".
set(OSS_SANITIZE "" CACHE STRING "Sanitizers to build with: address,undefined | thread")
add_library(oss_sanitizers INTERFACE)
if(OSS_SANITIZE)
  target_compile_options(oss_sanitizers INTERFACE -fsanitize=${OSS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(oss_sanitizers INTERFACE -fsanitize=${OSS_SANITIZE})
  # Sanitizers apply to everything we link so that library calls are instrumented consistently.
  add_compile_options(-fsanitize=${OSS_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${OSS_SANITIZE})
  # CI builds most of the project a second time with this (scripts/sanitizers.sh), so compile
  # time matters. -O0: the CI targets of the ASan+UBSan tree built in 251 s against 296 s at
  # -Og (and -Og was about half of -O1), while its unit tests (50 s against 52 s) and its
  # end-to-end tests (80 s against 77 s) ran as fast (2026-12-07, docs/reliability.md).
  # -DOSS_SANITIZE_OPT=-Og or -O1 for faster instrumented programs under long loads. -g1 (line
  # tables) is enough for symbolized reports. These come after CMAKE_CXX_FLAGS_<CONFIG> on the
  # command line, so they win.
  set(OSS_SANITIZE_OPT "-O0" CACHE STRING "Optimization of sanitizer builds (-O0, -Og, -O1)")
  add_compile_options(${OSS_SANITIZE_OPT} -g1)
endif()
add_library(oss::sanitizers ALIAS oss_sanitizers)
