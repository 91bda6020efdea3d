# data: `autotrain data` (issue #6): DATA_PATH's rows (files, split folders, the Hugging Face
# cache), DATA_FILE, and the token cache of fixed-length blocks the trainer maps. No LibTorch:
# the CLI and the trainer both link it, and its tests run under the sanitizers.
# Parquet pages and Arrow buffers come compressed (Snappy by default; zstd, gzip, LZ4 or Brotli
# on request; Feather's default is LZ4): Debian's libraries.
pkg_check_modules(SNAPPY REQUIRED IMPORTED_TARGET snappy)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(BROTLI REQUIRED IMPORTED_TARGET libbrotlidec)
# Data files compressed as a whole (train.jsonl.gz, .zst, .bz2, .xz); bzip2 has no .pc file.
pkg_check_modules(LZMA REQUIRED IMPORTED_TARGET liblzma)
find_package(BZip2 REQUIRED)

add_library(autotrain_data STATIC
  ${CMAKE_CURRENT_LIST_DIR}/csv_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mapped_file.cpp
  ${CMAKE_CURRENT_LIST_DIR}/zstd_stream.cpp
  ${CMAKE_CURRENT_LIST_DIR}/parquet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/arrow_ipc.cpp
  ${CMAKE_CURRENT_LIST_DIR}/columnar.cpp
  ${CMAKE_CURRENT_LIST_DIR}/readers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/source.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sha256.cpp
  ${CMAKE_CURRENT_LIST_DIR}/blocks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/token_cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/manifest.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prepare.cpp)
target_include_directories(autotrain_data PUBLIC ${AUTOTRAIN_INCLUDE})
# The readers' header exposes nlohmann::json. Everything else stays PRIVATE (link-only): the
# LibTorch library autotrain_model links this one, and {fmt}'s compiled-library definitions
# (FMT_SHARED, from autotrain_config's PUBLIC fmt::fmt) must not reach its files.
target_link_libraries(autotrain_data
  PUBLIC nlohmann_json::nlohmann_json
  PRIVATE autotrain_config autotrain_model_config autotrain_io autotrain_tokenizer autotrain_safetensors fmt::fmt spdlog::spdlog Threads::Threads
          PkgConfig::SNAPPY PkgConfig::ZSTD PkgConfig::ZLIB PkgConfig::LZ4 PkgConfig::BROTLI PkgConfig::LZMA BZip2::BZip2)

# The `data` subcommand.
target_sources(autotrain PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../cli/cmd_data.cpp)
target_link_libraries(autotrain PRIVATE autotrain_data)
