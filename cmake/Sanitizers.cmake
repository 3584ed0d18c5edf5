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
  # time matters: -Og keeps stacks exact and compiles in about half the time of -O1 with
  # instrumentation (the HTTP server test: 28 s against 58 s of CPU); -O0 would save only
  # another fifth (23 s) for slower tests. -g1 (line tables) is enough for symbolized
  # reports. These come after CMAKE_CXX_FLAGS_<CONFIG> on the command line, so they win.
  add_compile_options(-Og -g1)
endif()
add_library(oss::sanitizers ALIAS oss_sanitizers)
