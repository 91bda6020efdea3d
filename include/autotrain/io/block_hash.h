// The Merkle-Damgard framing SHA-1 and SHA-256 share: bytes gathered into 64-byte blocks, then
// 0x80, zeros and the message length in bits (big-endian) to end the last one. `Hash` (CRTP)
// supplies block(const unsigned char*), which mixes one block into its state. No LibTorch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace autotrain::io {

template <class Hash>
class BlockHash {
 public:
  void update(std::string_view bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t n = bytes.size();
    length_ += n;
    if (buffered_) {
      const size_t take = std::min(n, sizeof buf_ - buffered_);
      std::memcpy(buf_ + buffered_, p, take);
      buffered_ += take;
      p += take;
      n -= take;
      if (buffered_ < sizeof buf_) return;
      static_cast<Hash*>(this)->block(buf_);
      buffered_ = 0;
    }
    for (; n >= sizeof buf_; p += sizeof buf_, n -= sizeof buf_) static_cast<Hash*>(this)->block(p);
    std::memcpy(buf_, p, n);
    buffered_ = n;
  }

 protected:
  // Pads the message as both hashes end it; the state then holds the digest.
  void finish() {
    const uint64_t bits = length_ * 8;
    const unsigned char pad[72] = {0x80};
    update(std::string_view(reinterpret_cast<const char*>(pad), (buffered_ < 56 ? 56 : 120) - buffered_));
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(std::string_view(reinterpret_cast<const char*>(len), 8));
  }

 private:
  unsigned char buf_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

}  // namespace autotrain::io
