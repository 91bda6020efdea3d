#include "bpe.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <algorithm>
#include <queue>
#include <stdexcept>

#include "unicode.h"

namespace autotrain::tokenizer {

namespace {

uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

constexpr uint64_t kEmptyKey = ~0ull;  // never a real key: ids are non-negative

std::atomic<uint64_t> next_cache_key{1};

}  // namespace

BpeModel::BpeModel(StringMap<TokenId> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)), cache_key_(next_cache_key++) {
  TokenId max_id = -1;
  for (const auto& [tok, id] : vocab_) {
    if (id < 0) throw std::invalid_argument("vocabulary id of '" + tok + "' is negative");
    max_id = std::max(max_id, id);
  }
  // Ids index the embedding matrix, so they are dense in every real file; a huge stray id
  // would make the reverse table enormous.
  if (static_cast<size_t>(max_id) >= 4 * vocab_.size() + 1024)
    throw std::invalid_argument("vocabulary id " + std::to_string(max_id) + " is far beyond the " +
                                std::to_string(vocab_.size()) + " entries; ids must be (nearly) dense");
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  id_present_.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [tok, id] : vocab_) {
    id_to_token_[id] = tok;
    id_present_[id] = true;
  }

  size_t cap = 16;
  while (cap < merges.size() * 2) cap <<= 1;
  merge_keys_.assign(cap, kEmptyKey);
  merge_values_.resize(cap);
  merge_mask_ = cap - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    if (ia == vocab_.end() || ib == vocab_.end())
      throw std::invalid_argument("merge " + std::to_string(rank) + " '" + a + " " + b +
                                  "' uses a token that is not in the vocabulary");
    // With a continuing_subword_prefix ("##"), the second half's prefix goes: "##b" + "##c" makes
    // "##bc". The reference cuts as many bytes as the prefix has from it, prefixed or not.
    const size_t cut = options_.continuing_subword_prefix.size();
    if (b.size() < cut)
      throw std::invalid_argument("merge " + std::to_string(rank) + " '" + a + " " + b + "': '" + b +
                                  "' is shorter than the continuing_subword_prefix '" +
                                  options_.continuing_subword_prefix + "'");
    const std::string merged = a + b.substr(cut);
    auto im = vocab_.find(merged);
    if (im == vocab_.end())
      throw std::invalid_argument("merge " + std::to_string(rank) + " '" + a + " " + b + "' makes '" + merged +
                                  "', which is not in the vocabulary");
    uint64_t key = pair_key(ia->second, ib->second);
    for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
      // A repeated merge takes its last rank, as the reference's map insertion does.
      if (merge_keys_[slot] == key || merge_keys_[slot] == kEmptyKey) {
        merge_keys_[slot] = key;
        merge_values_[slot] = {static_cast<uint32_t>(rank), im->second};
        break;
      }
    }
  }
  if (options_.unk_token) {
    auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end())
      throw std::invalid_argument("unk_token '" + *options_.unk_token + "' is not in the vocabulary");
    unk_id_ = it->second;
  }
  if (options_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      snprintf(name, sizeof name, "<0x%02X>", b);
      if (auto it = vocab_.find(std::string_view(name)); it != vocab_.end()) byte_ids_[b] = it->second;
    }
  }
}

const BpeModel::Merge* BpeModel::find_merge(TokenId a, TokenId b) const {
  uint64_t key = pair_key(a, b);
  for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    if (merge_keys_[slot] == key) return &merge_values_[slot];
    if (merge_keys_[slot] == kEmptyKey) return nullptr;
  }
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::tokenize(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (piece.size() > kMaxCachedPiece) {
    tokenize_uncached(piece, out);
    return;
  }
  WordCache& cache = thread_cache();
  if (auto it = cache.find(piece); it != cache.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  size_t before = out.size();
  tokenize_uncached(piece, out);
  if (cache.size() < kCacheCapacity)
    cache.emplace(std::string(piece), std::vector<TokenId>(out.begin() + static_cast<ptrdiff_t>(before), out.end()));
}

BpeModel::WordCache& BpeModel::thread_cache() const {
  struct Slot {
    uint64_t key;
    std::unique_ptr<WordCache> cache;
  };
  // The caches of the last few models this thread used, most recent first; an older one is
  // dropped (also how the cache of a destroyed model goes away).
  constexpr size_t kSlots = 4;
  thread_local std::vector<Slot> slots;
  if (!slots.empty() && slots.front().key == cache_key_) return *slots.front().cache;
  for (size_t i = 1; i < slots.size(); ++i) {
    if (slots[i].key == cache_key_) {
      std::rotate(slots.begin(), slots.begin() + static_cast<ptrdiff_t>(i), slots.begin() + static_cast<ptrdiff_t>(i) + 1);
      return *slots.front().cache;
    }
  }
  if (slots.size() == kSlots) slots.pop_back();
  slots.insert(slots.begin(), Slot{cache_key_, std::make_unique<WordCache>()});
  return *slots.front().cache;
}

void BpeModel::tokenize_uncached(std::string_view w, std::vector<TokenId>& out) const {
  struct Symbol {
    TokenId id;
    int prev;
    int next;
    bool alive;
  };
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  auto add = [&](TokenId id) {
    int idx = static_cast<int>(symbols.size());
    symbols.push_back({id, idx - 1, -1, true});
    if (idx > 0) symbols[idx - 1].next = idx;
  };

  // Characters -> initial symbols, with unk / byte-fallback handling as merge_word does.
  std::optional<TokenId> pending_unk;
  const char* base = w.data();
  const char* p = base;
  const char* end = base + w.size();
  std::string scratch;
  while (p < end) {
    const char* start = p;
    unicode::next_code_point(p);
    std::string_view ch(start, static_cast<size_t>(p - start));
    bool is_first = start == base;
    bool is_last = p == end;
    std::string_view key = ch;
    if ((!options_.continuing_subword_prefix.empty() && !is_first) ||
        (!options_.end_of_word_suffix.empty() && is_last)) {
      scratch.clear();
      if (!is_first) scratch += options_.continuing_subword_prefix;
      scratch += ch;
      if (is_last) scratch += options_.end_of_word_suffix;
      key = scratch;
    }
    if (auto it = vocab_.find(key); it != vocab_.end()) {
      if (pending_unk) add(*std::exchange(pending_unk, std::nullopt));
      add(it->second);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char b : key) all = all && byte_ids_[static_cast<unsigned char>(b)].has_value();
      if (all) {
        // Like the reference, a pending unk is not flushed before byte tokens.
        for (char b : key) add(*byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !options_.fuse_unk) add(*pending_unk);
      pending_unk = unk_id_;
    }
    // No unk token: the character is dropped, as the reference does.
  }
  if (pending_unk) add(*pending_unk);

  const size_t n = symbols.size();
  if (n > 1) {
    struct Candidate {
      uint32_t rank;
      int pos;
      TokenId new_id;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    thread_local std::vector<Candidate> heap_storage;
    heap_storage.clear();
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue(std::greater<>{},
                                                                                std::move(heap_storage));
    for (size_t i = 0; i + 1 < n; ++i)
      if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id))
        queue.push({m->rank, static_cast<int>(i), m->new_id});
    while (!queue.empty()) {
      Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      const Merge* m = find_merge(left.id, right.id);
      if (!m || m->new_id != top.new_id) continue;  // stale: one side was merged since
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (left.prev >= 0)
        if (const Merge* pm = find_merge(symbols[left.prev].id, left.id)) queue.push({pm->rank, left.prev, pm->new_id});
      if (left.next >= 0)
        if (const Merge* nm = find_merge(left.id, symbols[left.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  for (const Symbol& s : symbols)
    if (s.alive) out.push_back(s.id);
}

}  // namespace autotrain::tokenizer
