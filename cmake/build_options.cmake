# SPDX-License-Identifier: Apache-2.0
# One INTERFACE target carries the build policy; every target links it PRIVATE.
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

find_program(SHOAL_CCACHE ccache)
if(SHOAL_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${SHOAL_CCACHE}")
endif()

add_library(shoal_build_options INTERFACE)
target_compile_features(shoal_build_options INTERFACE cxx_std_17)
target_compile_options(shoal_build_options INTERFACE -Wall -Wextra -Wpedantic)
if(SHOAL_WERROR)
  target_compile_options(shoal_build_options INTERFACE -Werror)
endif()
if(SHOAL_SANITIZERS)
  target_compile_options(shoal_build_options INTERFACE
    -fsanitize=${SHOAL_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(shoal_build_options INTERFACE -fsanitize=${SHOAL_SANITIZERS})
  # GCC 12 reports false -Wmaybe-uninitialized inside libstdc++ (std::function in
  # std::regex) when sanitizers are on; the release build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(shoal_build_options INTERFACE -Wno-maybe-uninitialized)
  endif()
endif()
# Sources include each other from the repository root: "storage/store.hpp".
target_include_directories(shoal_build_options INTERFACE "${PROJECT_SOURCE_DIR}")
