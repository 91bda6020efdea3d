// The encodings the Hub's upload API speaks: base64 (file contents in a commit, the 512-byte
// samples of the preupload call) and git's blob id (SHA-1 of "blob <size>\0" + content), which
// tells whether a small file is already on the Hub as it is here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "autotrain/io/block_hash.h"

namespace autotrain::hub {

std::string base64(std::string_view bytes);

// SHA-1 (FIPS 180-4), streamed (update(bytes) comes from BlockHash).
class Sha1 : public io::BlockHash<Sha1> {
 public:
  Sha1();
  std::string hex_digest();  // lower-case; the object must not be updated afterwards

 private:
  friend class io::BlockHash<Sha1>;
  void block(const unsigned char* p);
  uint32_t h_[5];
};

// git's object id of a file's content: what `git hash-object FILE` prints.
std::string git_blob_id(std::string_view content);

}  // namespace autotrain::hub
