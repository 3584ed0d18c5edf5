# OSS_SANITIZE: "" (off), "address,undefined" or "thread".
set(OSS_SANITIZE "" CACHE STRING "Sanitizers to build with: address,undefined | thread")
add_library(oss_sanitizers INTERFACE)
if(OSS_SANITIZE)
  target_compile_options(oss_sanitizers INTERFACE -fsanitize=${OSS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(oss_sanitizers INTERFACE -fsanitize=${OSS_SANITIZE})
  # Sanitizers apply to everything we link so that library calls are instrumented consistently.
  add_compile_options(-fsanitize=${OSS_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${OSS_SANITIZE})
endif()
add_library(oss::sanitizers ALIAS oss_sanitizers)
