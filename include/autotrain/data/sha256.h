// SHA-256 (FIPS 180-4), to fingerprint the token cache's source files: the digest is the one
// `sha256sum` prints, so a user can check a manifest entry by hand. No LibTorch.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "autotrain/io/block_hash.h"

namespace autotrain::data {

class Sha256 : public io::BlockHash<Sha256> {
 public:
  Sha256();
  // (update(bytes) comes from BlockHash.)
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  friend class io::BlockHash<Sha256>;
  void block(const unsigned char* p);
  std::array<uint32_t, 8> h_;
};

std::string sha256_hex(std::string_view bytes);
// Streams the file. Throws DataError naming it when it cannot be read.
std::string file_sha256(const std::filesystem::path& path);

}  // namespace autotrain::data
