// Strict header validation. The reference reader (safetensors/src/tensor.rs) is the bar: every
// file it rejects we reject too, each with a message that says which tensor and why, and no
// input - however malformed - makes us read outside the buffer.
#include "autotrain/safetensors/header.h"

#include <algorithm>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/json_error.h"
#include "autotrain/io/json_text.h"

namespace autotrain::safetensors {

namespace {

using nlohmann::json;

[[noreturn]] void fail(std::string_view where, const std::string& what) {
  throw SafetensorsError(fmt::format("{}: {}", where, what));
}

// Offset of the first byte that is not valid UTF-8, or npos. Overlong forms, surrogates and code
// points beyond U+10FFFF are invalid, as in Rust's str::from_utf8.
size_t invalid_utf8_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

// A JSON number that is a non-negative integer fitting in uint64_t.
bool as_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

TensorInfo parse_entry(std::string_view where, const std::string& name, const json& v) {
  auto bad = [&](const std::string& what) {
    fail(where, fmt::format("tensor '{}': {}", name, what));
  };
  if (!v.is_object())
    bad(fmt::format("expected an object {{\"dtype\", \"shape\", \"data_offsets\"}}, got {}", v.type_name()));
  TensorInfo t;
  t.name = name;
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) bad(fmt::format("missing field \"{}\"", field));
  // Unknown fields are ignored, as the reference reader does.

  const json& dt = v["dtype"];
  if (!dt.is_string()) bad("\"dtype\" must be a string");
  auto parsed = parse_dtype(dt.get_ref<const std::string&>());
  if (!parsed)
    bad(fmt::format("unknown dtype \"{}\" (known: {})", dt.get_ref<const std::string&>(), dtype_names()));
  t.dtype = *parsed;

  const json& shape = v["shape"];
  if (!shape.is_array()) bad("\"shape\" must be an array of non-negative integers");
  for (const auto& d : shape) {
    uint64_t dim;
    if (!as_u64(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      bad(fmt::format("\"shape\" must be an array of non-negative integers, got {}", shape.dump()));
    t.shape.push_back(static_cast<int64_t>(dim));
  }

  const json& offs = v["data_offsets"];
  if (!offs.is_array() || offs.size() != 2 || !as_u64(offs[0], &t.begin) || !as_u64(offs[1], &t.end))
    bad(fmt::format("\"data_offsets\" must be [begin, end] with non-negative integers, got {}", offs.dump()));
  if (t.end < t.begin) bad(fmt::format("data_offsets [{}, {}] end before begin", t.begin, t.end));

  uint64_t expected = byte_size(t.dtype, t.shape, where, name);
  if (expected != t.nbytes())
    bad(fmt::format("dtype {} and shape {} need {} bytes, but data_offsets [{}, {}] span {} bytes", dtype_name(t.dtype),
                    shape.dump(), expected, t.begin, t.end, t.nbytes()));
  return t;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorInfo* Header::find(std::string_view name) const {
  if (index.size() == tensors.size() && !index.empty()) {
    auto it = index.find(std::string(name));
    if (it == index.end()) return nullptr;
    if (it->second < tensors.size() && tensors[it->second].name == name) return &tensors[it->second];
  }
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

uint64_t byte_size(Dtype d, const std::vector<int64_t>& shape, std::string_view where, std::string_view tensor) {
  // Count bits, refusing overflow: a hostile shape must not wrap around to a small size.
  uint64_t bits = dtype_bits(d);
  for (int64_t dim : shape) {
    if (dim < 0) fail(where, fmt::format("tensor '{}': negative dimension {}", tensor, dim));
    uint64_t u = static_cast<uint64_t>(dim);
    if (u != 0 && bits > std::numeric_limits<uint64_t>::max() / u)
      fail(where, fmt::format("tensor '{}': shape too large (its byte size overflows 64 bits)", tensor));
    bits *= u;
  }
  if (bits % 8 != 0)
    fail(where, fmt::format("tensor '{}': {} elements of {} ({} bits each) do not fill whole bytes", tensor,
                            bits / dtype_bits(d), dtype_name(d), dtype_bits(d)));
  return bits / 8;
}

Header parse_header(std::string_view text, uint64_t buffer_size, std::string_view where) {
  if (size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
    fail(where, fmt::format("header is not valid UTF-8 (byte {} of the header); the file is corrupt or not a "
                            "safetensors file",
                            bad));

  // nlohmann keeps the last of duplicate keys silently; track the keys of each open object.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json root;
  try {
    root = io::parse_json_text(text, callback);
  } catch (const json::exception& e) {
    fail(where, fmt::format("header is not valid JSON: {}", io::json_error_text(e)));
  }
  if (!duplicate.empty()) fail(where, fmt::format("header has the key '{}' twice", duplicate));
  if (!root.is_object()) fail(where, "header must be a JSON object");

  Header h;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(where, "\"__metadata__\" must be an object of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          fail(where, fmt::format("\"__metadata__\" value of '{}' must be a string, got {}", k, v.type_name()));
        h.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    h.tensors.push_back(parse_entry(where, name, value));
  }

  // The bytes must be covered exactly once, in some order: sort by offset and walk.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : h.tensors) {
    if (t.begin < pos)
      fail(where, fmt::format("tensor '{}' (bytes [{}, {})) overlaps tensor '{}' (bytes [{}, {}))", t.name, t.begin,
                              t.end, prev->name, prev->begin, prev->end));
    if (t.begin > pos)
      fail(where, fmt::format("hole of {} unused bytes before tensor '{}' (bytes [{}, {})): data offsets must be "
                              "contiguous from 0",
                              t.begin - pos, t.name, t.begin, t.end));
    pos = t.end;
    prev = &t;
  }
  if (pos != buffer_size)
    fail(where, pos < buffer_size
                    ? fmt::format("the data buffer has {} bytes but the tensors cover only {} (trailing bytes, or a "
                                  "corrupt header)",
                                  buffer_size, pos)
                    : fmt::format("the tensors need {} bytes of data but the file holds only {} (truncated file?)", pos,
                                  buffer_size));
  h.index.reserve(h.tensors.size());
  for (size_t i = 0; i < h.tensors.size(); ++i) h.index.emplace(h.tensors[i].name, i);
  return h;
}

}  // namespace autotrain::safetensors
