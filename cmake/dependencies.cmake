# Third-party libraries. On Debian 12 every one comes from apt (scripts/setup_deps.sh) and is
# found through its CMake config or pkg-config. Machines that cannot install packages (the GPU
# machine: PyTorch's LibTorch, nothing else) pass LORASCOPE_VENDOR_DIR, a folder holding the
# same headers, libsentencepiece and googletest's sources (scripts/gpu_vendor.sh makes it).
set(LORASCOPE_VENDOR_DIR "" CACHE PATH "fallback headers/libraries (see scripts/gpu_vendor.sh)")

# A header-only library found by a header, when its CMake config is missing.
function(lorascope_header_only target header)
  if(TARGET ${target})
    return()
  endif()
  find_path(_dir ${header} HINTS ${LORASCOPE_VENDOR_DIR}/include REQUIRED NO_CACHE)
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_dir})
endfunction()

find_package(nlohmann_json 3 QUIET)
lorascope_header_only(nlohmann_json::nlohmann_json nlohmann/json.hpp)
find_package(CLI11 QUIET)
lorascope_header_only(CLI11::CLI11 CLI/CLI.hpp)
find_package(Eigen3 3.3 QUIET NO_MODULE)
lorascope_header_only(Eigen3::Eigen Eigen/Dense)
find_package(Threads REQUIRED)

# c10d's ProcessGroupGloo.hpp includes <gloo/...>: Debian's libgloo-dev, or the copy in
# PyTorch's LibTorch include folder.
find_path(LORASCOPE_GLOO_INCLUDE_DIR gloo/config.h HINTS ${TORCH_INCLUDE_DIRS}
          ${LORASCOPE_VENDOR_DIR}/include)
if(NOT LORASCOPE_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "gloo/config.h not found: install libgloo-dev (bash scripts/setup_deps.sh) "
                      "or point CMAKE_PREFIX_PATH at a LibTorch that ships the Gloo headers")
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(SENTENCEPIECE QUIET IMPORTED_TARGET sentencepiece)
endif()
add_library(lorascope_sentencepiece INTERFACE)
if(TARGET PkgConfig::SENTENCEPIECE)
  target_link_libraries(lorascope_sentencepiece INTERFACE PkgConfig::SENTENCEPIECE)
else()
  find_path(SPM_INCLUDE sentencepiece_processor.h HINTS ${LORASCOPE_VENDOR_DIR}/include REQUIRED)
  find_library(SPM_LIBRARY sentencepiece HINTS ${LORASCOPE_VENDOR_DIR}/lib REQUIRED)
  # SentencePieceTrainer lives in its own library; a plugin links even without it and would
  # only fail at dlopen, so it is required here.
  find_library(SPM_TRAIN_LIBRARY sentencepiece_train HINTS ${LORASCOPE_VENDOR_DIR}/lib REQUIRED)
  target_include_directories(lorascope_sentencepiece INTERFACE ${SPM_INCLUDE})
  target_link_libraries(lorascope_sentencepiece INTERFACE ${SPM_TRAIN_LIBRARY} ${SPM_LIBRARY})
endif()

# PCRE2 (Unicode-class regexes of byte-level BPE pre-tokenizers, data/bpe_tokenizer.cpp).
if(PkgConfig_FOUND)
  pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
endif()
add_library(lorascope_pcre2 INTERFACE)
if(TARGET PkgConfig::PCRE2)
  target_link_libraries(lorascope_pcre2 INTERFACE PkgConfig::PCRE2)
else()
  find_path(PCRE2_INCLUDE pcre2.h HINTS ${LORASCOPE_VENDOR_DIR}/include REQUIRED)
  find_library(PCRE2_LIBRARY pcre2-8 HINTS ${LORASCOPE_VENDOR_DIR}/lib REQUIRED)
  target_include_directories(lorascope_pcre2 INTERFACE ${PCRE2_INCLUDE})
  target_link_libraries(lorascope_pcre2 INTERFACE ${PCRE2_LIBRARY})
endif()

if(LORASCOPE_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT TARGET GTest::gtest_main AND EXISTS ${LORASCOPE_VENDOR_DIR}/googletest/CMakeLists.txt)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
    add_subdirectory(${LORASCOPE_VENDOR_DIR}/googletest ${CMAKE_BINARY_DIR}/googletest
                     EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest_main)  # googletest >= 1.11 defines these itself
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    endif()
  endif()
  if(NOT TARGET GTest::gtest_main)
    message(FATAL_ERROR "GoogleTest not found: apt-get install libgtest-dev (scripts/setup_deps.sh)")
  endif()
endif()
