// A Parquet reader for one top-level string column (see autotrain/data/parquet.h). The layout,
// from the Apache Parquet format specification: "PAR1", column chunks of pages, the footer
// (FileMetaData in Thrift's compact protocol), its 4-byte length, "PAR1".
#include "autotrain/data/parquet.h"


#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <brotli/decode.h>
#include <lz4.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "autotrain/io/utf8.h"
#include "mapped_file.h"
#include "zstd_stream.h"

namespace autotrain::data {

namespace {

// A page may not claim more than this once decompressed. pyarrow cuts pages every 1,024 rows at
// the least, so 1 MiB texts make 1 GiB pages; each codec's own size record is checked against
// the claim before anything is allocated.
constexpr uint64_t kMaxPageBytes = (uint64_t{1} << 31) - 1;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DataError(fmt::format("{}: {}", where, what));
}

[[noreturn]] void damaged(const std::string& where, const std::string& what) {
  fail(where, fmt::format("not a readable Parquet file ({}); check the download, or convert it: python3 -c "
                          "\"import pandas as p; p.read_parquet('FILE').to_json('FILE.jsonl', orient='records', "
                          "lines=True)\"",
                          what));
}

// ---- Thrift compact protocol: what the footer and page headers need ----

enum CompactType : uint8_t {
  kStop = 0, kTrue = 1, kFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6, kDouble = 7,
  kBinary = 8, kList = 9, kSet = 10, kMap = 11, kStruct = 12,
};

class Compact {
 public:
  Compact(std::string_view bytes, const std::string& where) : p_(bytes), where_(where) {}

  size_t position() const { return pos_; }

  uint8_t byte() {
    if (pos_ >= p_.size()) damaged(where_, "a header runs past its end");
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    damaged(where_, "an integer longer than 10 bytes");
  }
  int64_t zigzag() {
    const uint64_t v = varint();
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
  }
  std::string_view binary() {
    const uint64_t n = varint();
    if (n > p_.size() - pos_) damaged(where_, "a string runs past its end");
    std::string_view s = p_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  struct Field {
    int16_t id = 0;
    uint8_t type = kStop;
  };
  // The next field of a struct; `last` is the previous field's id (ids are sent as deltas).
  Field field(int16_t& last) {
    const uint8_t b = byte();
    Field f;
    f.type = b & 0x0F;
    if (f.type == kStop) return f;
    const uint8_t delta = b >> 4;
    const int64_t id = delta ? last + delta : zigzag();
    if (id < std::numeric_limits<int16_t>::min() || id > std::numeric_limits<int16_t>::max())
      damaged(where_, "a field id out of range");
    f.id = static_cast<int16_t>(id);
    last = f.id;
    return f;
  }

  struct ListHeader {
    uint64_t size = 0;
    uint8_t elem = 0;
  };
  ListHeader list() {
    const uint8_t b = byte();
    ListHeader h{static_cast<uint64_t>(b >> 4), static_cast<uint8_t>(b & 0x0F)};
    if (h.size == 15) h.size = varint();
    // Every element takes a byte at least: a count past the bytes left is damage, not a loop of
    // billions.
    if (h.size > p_.size() - pos_) damaged(where_, "a list longer than the header");
    return h;
  }

  int64_t i64_of(uint8_t type) {
    if (type == kByte) return static_cast<int8_t>(byte());
    if (type == kI16 || type == kI32 || type == kI64) return zigzag();
    damaged(where_, fmt::format("an integer field of type {}", type));
  }
  bool bool_of(uint8_t type) {
    if (type == kTrue) return true;
    if (type == kFalse) return false;
    damaged(where_, "a boolean field of another type");
  }

  void skip(uint8_t type, int depth = 0) {
    if (depth > 32) damaged(where_, "structures nested too deep");
    switch (type) {
      case kTrue:
      case kFalse:
        return;
      case kByte:
        byte();
        return;
      case kI16:
      case kI32:
      case kI64:
        varint();
        return;
      case kDouble:
        for (int i = 0; i < 8; ++i) byte();
        return;
      case kBinary:
        binary();
        return;
      case kList:
      case kSet: {
        const auto h = list();
        for (uint64_t i = 0; i < h.size; ++i) skip_element(h.elem, depth + 1);
        return;
      }
      case kMap: {
        const uint64_t n = varint();
        if (n == 0) return;
        if (n > p_.size() - pos_) damaged(where_, "a map longer than the header");
        const uint8_t kv = byte();
        for (uint64_t i = 0; i < n; ++i) {
          skip_element(static_cast<uint8_t>(kv >> 4), depth + 1);
          skip_element(static_cast<uint8_t>(kv & 0x0F), depth + 1);
        }
        return;
      }
      case kStruct: {
        int16_t last = 0;
        for (Field f = field(last); f.type != kStop; f = field(last)) skip(f.type, depth + 1);
        return;
      }
      default:
        damaged(where_, fmt::format("an unknown field type {}", type));
    }
  }

 private:
  // In lists, a boolean is a byte of its own (1 or 2), unlike in a field header.
  void skip_element(uint8_t type, int depth) {
    if (type == kTrue || type == kFalse) {
      byte();
      return;
    }
    skip(type, depth);
  }

  std::string_view p_;
  size_t pos_ = 0;
  const std::string& where_;
};

// Reads a struct's fields with `on_field(id, type)`, which consumes the ones it knows and returns
// false for the others (skipped).
template <class F>
void read_struct(Compact& c, F&& on_field) {
  int16_t last = 0;
  for (auto f = c.field(last); f.type != kStop; f = c.field(last))
    if (!on_field(f.id, f.type)) c.skip(f.type);
}

// ---- the footer ----

enum PhysicalType { kBoolean = 0, kInt32 = 1, kInt64 = 2, kInt96 = 3, kFloat = 4, kDoubleType = 5, kByteArray = 6,
                    kFixedLenByteArray = 7 };
const char* physical_name(int64_t t) {
  static const char* kNames[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY",
                                 "FIXED_LEN_BYTE_ARRAY"};
  return t >= 0 && t < 8 ? kNames[t] : "an unknown type";
}

struct SchemaElement {
  int64_t type = -1;        // PhysicalType; -1 for a group
  int64_t repetition = 0;   // 0 required, 1 optional, 2 repeated
  std::string name;
  int64_t num_children = 0;
  int64_t converted_type = -1;  // 0 UTF8, 16 ENUM, 19 JSON: UTF-8 text
  bool logical_string = false;  // LogicalType STRING (1), ENUM (4) or JSON (12): UTF-8 text
};

struct ColumnMeta {
  int64_t type = -1;
  int64_t codec = 0;
  int64_t num_values = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;
  bool external = false;  // the chunk lives in another file (ColumnChunk.file_path)
};

struct RowGroup {
  int64_t num_rows = 0;
  std::vector<ColumnMeta> columns;
};

struct FileMeta {
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
};

SchemaElement read_schema_element(Compact& c) {
  SchemaElement e;
  read_struct(c, [&](int16_t id, uint8_t type) {
    switch (id) {
      case 1: e.type = c.i64_of(type); return true;
      case 3: e.repetition = c.i64_of(type); return true;
      case 4: e.name = std::string(c.binary()); return true;
      case 5: e.num_children = c.i64_of(type); return true;
      case 6: e.converted_type = c.i64_of(type); return true;
      case 10:
        if (type != kStruct) return false;
        // LogicalType is a union: STRING is its field 1.
        read_struct(c, [&](int16_t lid, uint8_t) {
          if (lid == 1 || lid == 4 || lid == 12) e.logical_string = true;
          return false;
        });
        return true;
      default: return false;
    }
  });
  return e;
}

ColumnMeta read_column_meta(Compact& c) {
  ColumnMeta m;
  read_struct(c, [&](int16_t id, uint8_t type) {
    switch (id) {
      case 1: m.type = c.i64_of(type); return true;
      case 4: m.codec = c.i64_of(type); return true;
      case 5: m.num_values = c.i64_of(type); return true;
      case 7: m.total_compressed_size = c.i64_of(type); return true;
      case 9: m.data_page_offset = c.i64_of(type); return true;
      case 11: m.dictionary_page_offset = c.i64_of(type); return true;
      default: return false;
    }
  });
  return m;
}

RowGroup read_row_group(Compact& c) {
  RowGroup g;
  read_struct(c, [&](int16_t id, uint8_t type) {
    if (id == 1 && type == kList) {
      const auto h = c.list();
      for (uint64_t i = 0; i < h.size; ++i) {
        ColumnMeta m;
        bool have_meta = false, external = false;
        read_struct(c, [&](int16_t cid, uint8_t ctype) {
          if (cid == 1 && ctype == kBinary) {
            external = !c.binary().empty();
            return true;
          }
          if (cid == 3 && ctype == kStruct) {
            m = read_column_meta(c);
            have_meta = true;
            return true;
          }
          return false;
        });
        m.external = external || !have_meta;
        g.columns.push_back(m);
      }
      return true;
    }
    if (id == 3) {
      g.num_rows = c.i64_of(type);
      return true;
    }
    return false;
  });
  return g;
}

FileMeta read_footer(std::string_view file, const std::string& where) {
  if (file.size() < 12 || file.substr(0, 4) != "PAR1" || file.substr(file.size() - 4) != "PAR1") {
    if (file.size() >= 4 && file.substr(file.size() - 4) == "PARE")
      fail(where, "an encrypted Parquet file; decrypt it first (pyarrow with the key), or export the rows as JSON Lines");
    damaged(where, "no PAR1 marks at its start and end");
  }
  uint32_t len = 0;
  std::memcpy(&len, file.data() + file.size() - 8, 4);  // little-endian, as x86 and ARM Linux are
  if (len > file.size() - 12) damaged(where, "the footer length is past the file's start");
  Compact c(file.substr(file.size() - 8 - len, len), where);
  FileMeta meta;
  read_struct(c, [&](int16_t id, uint8_t type) {
    if (id == 2 && type == kList) {
      const auto h = c.list();
      for (uint64_t i = 0; i < h.size; ++i) meta.schema.push_back(read_schema_element(c));
      return true;
    }
    if (id == 3) {
      meta.num_rows = c.i64_of(type);
      return true;
    }
    if (id == 4 && type == kList) {
      const auto h = c.list();
      for (uint64_t i = 0; i < h.size; ++i) meta.row_groups.push_back(read_row_group(c));
      return true;
    }
    return false;
  });
  if (meta.schema.empty()) damaged(where, "the footer has no schema");
  return meta;
}

// ---- pages ----

struct PageHeader {
  int64_t type = -1;  // 0 data, 1 index, 2 dictionary, 3 data v2
  int64_t uncompressed_size = -1;
  int64_t compressed_size = -1;
  int64_t num_values = 0;
  int64_t encoding = 0;
  int64_t def_level_encoding = 3;  // v1: RLE (3), or the deprecated BIT_PACKED (4)
  // v2
  int64_t num_nulls = 0;
  int64_t def_bytes = 0;
  int64_t rep_bytes = 0;
  bool v2_compressed = true;
};

PageHeader read_page_header(Compact& c) {
  PageHeader h;
  read_struct(c, [&](int16_t id, uint8_t type) {
    switch (id) {
      case 1: h.type = c.i64_of(type); return true;
      case 2: h.uncompressed_size = c.i64_of(type); return true;
      case 3: h.compressed_size = c.i64_of(type); return true;
      case 5:  // DataPageHeader
      case 7:  // DictionaryPageHeader
        if (type != kStruct) return false;
        read_struct(c, [&](int16_t did, uint8_t dtype) {
          if (did == 1) h.num_values = c.i64_of(dtype);
          else if (did == 2) h.encoding = c.i64_of(dtype);
          else if (did == 3 && id == 5) h.def_level_encoding = c.i64_of(dtype);
          else return false;
          return true;
        });
        return true;
      case 8:  // DataPageHeaderV2
        if (type != kStruct) return false;
        read_struct(c, [&](int16_t vid, uint8_t vtype) {
          switch (vid) {
            case 1: h.num_values = c.i64_of(vtype); return true;
            case 2: h.num_nulls = c.i64_of(vtype); return true;
            case 4: h.encoding = c.i64_of(vtype); return true;
            case 5: h.def_bytes = c.i64_of(vtype); return true;
            case 6: h.rep_bytes = c.i64_of(vtype); return true;
            case 7: h.v2_compressed = c.bool_of(vtype); return true;
            default: return false;
          }
        });
        return true;
      default: return false;
    }
  });
  return h;
}

const char* codec_name(int64_t codec) {
  static const char* kNames[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
  return codec >= 0 && codec < 8 ? kNames[codec] : "an unknown codec";
}

// A buffer reused from page to page keeps the memory of the largest page it held: charged as it
// grows, given back when the column chunk is done.
class Held {
 public:
  Held(TextBudget& budget, const std::string& where) : budget_(budget), where_(where) {}
  ~Held() { budget_.refund(held_); }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  void need(uint64_t bytes) {
    if (bytes <= held_) return;
    budget_.charge(bytes - held_, where_);
    held_ = bytes;
  }

 private:
  TextBudget& budget_;
  const std::string& where_;
  uint64_t held_ = 0;
};

// LZ4 blocks expand at most about 255 to 1 (a match length grows by 255 per byte).
bool lz4_could_expand_to(std::string_view in, uint64_t size) { return size / 256 <= in.size() + 16; }

// One raw LZ4 block into all of `out`; false when it does not decompress to exactly that size.
bool lz4_block(std::string_view in, char* out, uint64_t size) {
  if (in.size() > static_cast<uint64_t>(std::numeric_limits<int>::max()) ||
      size > static_cast<uint64_t>(std::numeric_limits<int>::max()))
    return false;
  return LZ4_decompress_safe(in.data(), out, static_cast<int>(in.size()), static_cast<int>(size)) ==
         static_cast<int>(size);
}

// The LZ4 codec (5) of older writers: Hadoop's framing (big-endian decompressed and compressed
// sizes before each block), or a bare block from writers that misread the spec; Arrow reads both.
bool lz4_hadoop(std::string_view in, char* out, uint64_t size) {
  auto big_endian = [&](size_t at) {
    const auto* b = reinterpret_cast<const uint8_t*>(in.data() + at);
    return uint64_t{b[0]} << 24 | uint64_t{b[1]} << 16 | uint64_t{b[2]} << 8 | uint64_t{b[3]};
  };
  uint64_t done = 0;
  size_t pos = 0;
  while (in.size() - pos >= 8) {
    const uint64_t raw = big_endian(pos), packed = big_endian(pos + 4);
    pos += 8;
    if (packed > in.size() - pos || raw > size - done || !lz4_block(in.substr(pos, packed), out + done, raw)) return false;
    pos += packed;
    done += raw;
  }
  return pos == in.size() && done == size;
}

// `in` decompressed to exactly `size` bytes: `in` itself when it is not compressed, else
// `buffer`, which holds them (charged to `held` before it grows).
std::string_view decompress(int64_t codec, std::string_view in, uint64_t size, std::string& buffer, Held& held,
                            const std::string& where) {
  if (codec == 0) {
    if (in.size() != size) damaged(where, "an uncompressed page whose sizes differ");
    return in;
  }
  if (size > kMaxPageBytes)
    fail(where, fmt::format("a page of {} bytes once decompressed, more than the 2 GiB autotrain reads in one page; "
                            "rewrite the file with smaller row groups (pyarrow: write_batch_size / data_page_size)",
                            size));
  // The codec's own record of the size first, and what the codec can expand to, so a header
  // that lies allocates nothing.
  bool zstd_size_known = true;
  if (codec == 1) {
    size_t n = 0;
    if (snappy_uncompressed_length(in.data(), in.size(), &n) != SNAPPY_OK || n != size)
      damaged(where, "a Snappy page that does not decompress to its size");
    if (size / 22 > in.size())  // a 3-byte copy makes at most 64 bytes
      damaged(where, "a Snappy page claiming more than Snappy can expand to");
  } else if (codec == 6) {
    const unsigned long long n = ZSTD_getFrameContentSize(in.data(), in.size());
    if (n == ZSTD_CONTENTSIZE_ERROR || (n != ZSTD_CONTENTSIZE_UNKNOWN && n != size))
      damaged(where, "a zstd page that does not decompress to its size");
    zstd_size_known = n != ZSTD_CONTENTSIZE_UNKNOWN;
  } else if (codec == 2 && size / 1032 > in.size()) {
    damaged(where, "a gzip page claiming more than deflate can expand to");  // deflate's ratio is below 1032:1
  } else if ((codec == 5 || codec == 7) && !lz4_could_expand_to(in, size)) {
    damaged(where, "an LZ4 page claiming more than LZ4 can expand to");
  }
  held.need(size);
  std::string& out = buffer;
  if (codec == 4) {
    // Brotli has no size record and no useful bound on its ratio: the output grows as it comes.
    std::unique_ptr<BrotliDecoderState, void (*)(BrotliDecoderState*)> state(
        BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
    if (!state) throw std::bad_alloc();
    size_t in_left = in.size();
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
    out.clear();
    uint8_t chunk[1 << 16];
    while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
      size_t out_left = sizeof chunk;
      uint8_t* next_out = chunk;
      rc = BrotliDecoderDecompressStream(state.get(), &in_left, &next_in, &out_left, &next_out, nullptr);
      const size_t produced = sizeof chunk - out_left;
      if (produced > size - out.size()) damaged(where, "a Brotli page that does not decompress to its size");
      out.append(reinterpret_cast<const char*>(chunk), produced);
    }
    if (rc != BROTLI_DECODER_RESULT_SUCCESS || in_left != 0 || out.size() != size)
      damaged(where, "a Brotli page that does not decompress to its size");
    return out;
  }
  if (codec == 6 && !zstd_size_known) {
    // A frame without its size (streaming writers): zstd's ratio is unbounded, so grown as it comes.
    out.clear();
    if (zstd_decompress(in, size, out) != ZstdResult::kDone || out.size() != size)
      damaged(where, "a zstd page that does not decompress to its size");
    return out;
  }
  out.assign(size, '\0');
  switch (codec) {
    case 1: {
      size_t n = size;
      if (snappy_uncompress(in.data(), in.size(), out.data(), &n) != SNAPPY_OK || n != size)
        damaged(where, "a Snappy page that does not decompress");
      return out;
    }
    case 2: {
      z_stream z{};
      if (inflateInit2(&z, 15 + 32) != Z_OK) damaged(where, "zlib would not start");  // 32: gzip or zlib header
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(in.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(size);
      const int rc = inflate(&z, Z_FINISH);
      const uint64_t produced = z.total_out;
      inflateEnd(&z);
      if (in.size() > std::numeric_limits<uInt>::max() || rc != Z_STREAM_END || produced != size)
        damaged(where, "a gzip page that does not decompress to its size");
      return out;
    }
    case 5:
      if (!lz4_hadoop(in, out.data(), size) && !lz4_block(in, out.data(), size))
        damaged(where, "an LZ4 page that does not decompress to its size");
      return out;
    case 6: {
      const size_t n = ZSTD_decompress(out.data(), size, in.data(), in.size());
      if (ZSTD_isError(n) || n != size) damaged(where, "a zstd page that does not decompress to its size");
      return out;
    }
    case 7:
      if (!lz4_block(in, out.data(), size)) damaged(where, "an LZ4_RAW page that does not decompress to its size");
      return out;
    default:
      // LZO: pyarrow cannot read it either, so only the writer (Spark, Hive) can convert the file.
      fail(where, fmt::format("pages compressed with {}, which autotrain (and pyarrow) do not read; write the file "
                              "again with another codec (Spark: .option('compression', 'snappy'))",
                              codec_name(codec)));
  }
}

// The RLE / bit-packed hybrid encoding of definition levels and dictionary indices: `count`
// values of `bit_width` bits.
void decode_hybrid(std::string_view in, int bit_width, size_t count, std::vector<uint32_t>& out,
                   const std::string& where) {
  out.clear();
  if (bit_width < 0 || bit_width > 32) damaged(where, fmt::format("a bit width of {}", bit_width));
  out.reserve(std::min<size_t>(count, in.size() * 8 + 1024));
  const auto width = static_cast<uint64_t>(bit_width);
  const size_t value_bytes = (width + 7) / 8;
  size_t pos = 0;
  while (out.size() < count) {
    Compact header(in.substr(pos), where);
    const uint64_t h = header.varint();
    pos += header.position();
    if (h & 1) {  // bit-packed: (h >> 1) groups of 8 values, `width` bytes each
      const uint64_t groups = h >> 1;
      if (groups == 0) damaged(where, "an empty bit-packed run");
      // Only the bytes of the values still wanted must be there: older arrow2/polars writers cut
      // a page's last run after its last value instead of padding it to a whole group.
      if (width > 0 && groups > (in.size() - pos) / width + 1) damaged(where, "a bit-packed run past the page's end");
      const uint64_t wanted = std::min<uint64_t>(groups * 8, count - out.size());
      if ((wanted * width + 7) / 8 > in.size() - pos) damaged(where, "a bit-packed run past the page's end");
      const auto* p = reinterpret_cast<const uint8_t*>(in.data() + pos);
      for (uint64_t i = 0; i < wanted; ++i) {
        uint64_t v = 0;
        const uint64_t bit = i * width;
        for (uint64_t b = 0; b < width; ++b) {
          const uint64_t at = bit + b;
          v |= static_cast<uint64_t>((p[at / 8] >> (at % 8)) & 1) << b;
        }
        out.push_back(static_cast<uint32_t>(v));
      }
      pos += static_cast<size_t>(std::min<uint64_t>(groups * width, in.size() - pos));
    } else {  // a run of one value, in `value_bytes` little-endian bytes
      const uint64_t run = h >> 1;
      if (run == 0) damaged(where, "an empty run");
      if (value_bytes > in.size() - pos) damaged(where, "a run's value past the page's end");
      uint32_t v = 0;
      for (size_t b = 0; b < value_bytes; ++b) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[pos + b])) << (8 * b);
      pos += value_bytes;
      for (uint64_t i = 0; i < run && out.size() < count; ++i) out.push_back(v);
    }
  }
}

// PLAIN byte arrays: a 4-byte little-endian length, then the bytes.
void decode_plain(std::string_view in, size_t count, std::vector<std::string_view>& out, const std::string& where) {
  size_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    if (in.size() - pos < 4) damaged(where, "a value's length past the page's end");
    uint32_t n = 0;
    std::memcpy(&n, in.data() + pos, 4);
    pos += 4;
    if (n > in.size() - pos) damaged(where, "a value past the page's end");
    out.push_back(in.substr(pos, n));
    pos += n;
  }
}

// DELTA_BINARY_PACKED integers (the lengths inside the two DELTA byte-array encodings):
// a header (block size, miniblocks per block, value count, first value), then blocks of a
// minimum delta, one bit width per miniblock and the miniblocks' bit-packed deltas. The first
// `count` values (the header may hold more, as pyarrow allows; they are stepped over); returns
// where they end. Sums wrap, as the writers' subtractions did.
size_t decode_delta_binary(std::string_view in, size_t count, std::vector<int64_t>& out, const std::string& where) {
  out.clear();
  Compact c(in, where);
  const uint64_t block_size = c.varint(), miniblocks = c.varint(), total = c.varint();
  const int64_t first = c.zigzag();
  if (block_size == 0 || block_size % 128 != 0 || miniblocks == 0 || block_size % miniblocks != 0 ||
      (block_size / miniblocks) % 32 != 0 || block_size > (uint64_t{1} << 31))
    damaged(where, "a DELTA_BINARY_PACKED header with impossible block sizes");
  if (total < count) damaged(where, fmt::format("{} delta-encoded lengths for {} values", total, count));
  size_t pos = c.position();
  if (total == 0) return pos;
  out.reserve(count);
  uint64_t last = static_cast<uint64_t>(first);
  if (count > 0) out.push_back(first);
  // Values beyond `count` are stepped over a miniblock at a time; every block costs at least its
  // bit widths' bytes, so the loops are bounded by the page's size, not by `total`.
  uint64_t done = 1;
  const uint64_t per_miniblock = block_size / miniblocks;
  while (done < total) {
    Compact block(in.substr(pos), where);
    const auto min_delta = static_cast<uint64_t>(block.zigzag());
    pos += block.position();
    if (miniblocks > in.size() - pos) damaged(where, "delta bit widths past the page's end");
    const std::string_view widths = in.substr(pos, miniblocks);
    pos += miniblocks;
    for (uint64_t m = 0; m < miniblocks && done < total; ++m) {
      const auto width = static_cast<uint8_t>(widths[m]);
      if (width > 64) damaged(where, fmt::format("a delta bit width of {}", width));
      const uint64_t in_miniblock = std::min<uint64_t>(per_miniblock, total - done);
      done += in_miniblock;
      const uint64_t wanted = std::min<uint64_t>(in_miniblock, count - out.size());
      // A miniblock is padded to its full size, but only the bytes of wanted values must be there.
      if ((wanted * width + 7) / 8 > in.size() - pos) damaged(where, "delta-encoded lengths past the page's end");
      const auto* p = reinterpret_cast<const uint8_t*>(in.data() + pos);
      for (uint64_t i = 0; i < wanted; ++i) {
        uint64_t v = 0;
        const uint64_t bit = i * width;
        for (uint64_t b = 0; b < width;) {  // a byte (or what is left of one) at a time
          const uint64_t at = bit + b, take = std::min<uint64_t>(8 - at % 8, width - b);
          v |= ((static_cast<uint64_t>(p[at / 8]) >> (at % 8)) & ((uint64_t{1} << take) - 1)) << b;
          b += take;
        }
        last += min_delta + v;
        out.push_back(static_cast<int64_t>(last));
      }
      pos += static_cast<size_t>(std::min<uint64_t>(per_miniblock * width / 8, in.size() - pos));
    }
  }
  return pos;
}

// DELTA_LENGTH_BYTE_ARRAY: every value's length (delta-encoded), then all their bytes.
void decode_delta_length(std::string_view in, size_t count, std::vector<std::string_view>& out,
                         std::vector<int64_t>& lengths, const std::string& where) {
  size_t pos = decode_delta_binary(in, count, lengths, where);
  for (const int64_t n : lengths) {
    if (n < 0) damaged(where, "a negative value length");
    if (static_cast<uint64_t>(n) > in.size() - pos) damaged(where, "a value past the page's end");
    out.push_back(in.substr(pos, static_cast<size_t>(n)));
    pos += static_cast<size_t>(n);
  }
}

// DELTA_BYTE_ARRAY (incremental encoding): each value is that many bytes of the one before it
// (the prefix lengths, delta-encoded) followed by its suffix (DELTA_LENGTH_BYTE_ARRAY). The
// values are built in `arena`, charged first (shared prefixes let a small page claim a lot).
void decode_delta_byte_array(std::string_view in, size_t count, std::vector<std::string_view>& out,
                             std::string& arena, std::vector<int64_t>& prefixes, std::vector<int64_t>& lengths,
                             std::vector<std::string_view>& suffixes, Held& held, const std::string& where) {
  const size_t pos = decode_delta_binary(in, count, prefixes, where);
  suffixes.clear();
  decode_delta_length(in.substr(pos), count, suffixes, lengths, where);
  uint64_t total = 0, previous = 0;
  for (size_t i = 0; i < count; ++i) {
    if (prefixes[i] < 0 || static_cast<uint64_t>(prefixes[i]) > previous)
      damaged(where, "a prefix longer than the value before it");
    previous = static_cast<uint64_t>(prefixes[i]) + suffixes[i].size();
    if (previous > kMaxPageBytes || total > kMaxPageBytes) damaged(where, "values of more than 2 GiB in one page");
    total += previous;
  }
  held.need(total);
  arena.clear();
  arena.reserve(total);
  size_t before = 0;  // where the previous value starts in the arena
  for (size_t i = 0; i < count; ++i) {
    const size_t start = arena.size();
    arena.append(arena, before, static_cast<size_t>(prefixes[i]));
    arena.append(suffixes[i]);
    before = start;
  }
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t n = static_cast<size_t>(prefixes[i]) + suffixes[i].size();
    out.push_back(std::string_view(arena).substr(at, n));
    at += n;
  }
}

enum Encoding { kPlain = 0, kPlainDictionary = 2, kRle = 3, kDeltaLengthByteArray = 6, kDeltaByteArray = 7,
                kRleDictionary = 8 };
const char* encoding_name(int64_t e) {
  static const char* kNames[] = {"PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED",
                                 "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
                                 "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
  return e >= 0 && e < 10 ? kNames[e] : "an unknown encoding";
}

// One column chunk's values, appended to `out`.

void read_chunk(std::string_view file, const ColumnMeta& m, int64_t rows, bool optional, const std::string& where,
                TextBudget& budget, std::vector<std::optional<std::string>>& out) {
  int64_t start = m.data_page_offset;
  if (m.dictionary_page_offset > 0 && m.dictionary_page_offset < start) start = m.dictionary_page_offset;
  const auto size = static_cast<int64_t>(file.size());
  if (start < 4 || start >= size || m.total_compressed_size < 0 || m.total_compressed_size > size - start)
    damaged(where, "a column chunk outside the file");
  const std::string_view chunk = file.substr(static_cast<size_t>(start), static_cast<size_t>(m.total_compressed_size));
  std::string dictionary_buffer, page_buffer;
  std::vector<std::string_view> dictionary;  // views into dictionary_buffer (or the file)
  std::vector<uint32_t> levels, indices;
  std::vector<std::string_view> plain, suffixes;
  std::vector<int64_t> prefixes, lengths;
  std::string arena;  // DELTA_BYTE_ARRAY's values, one page at a time
  // The buffers above keep the memory of their largest page until the chunk is read.
  Held dictionary_held(budget, where), dictionary_views_held(budget, where), page_held(budget, where),
      scratch_held(budget, where), arena_held(budget, where);
  int64_t read = 0;
  size_t pos = 0;
  while (read < rows) {
    if (pos >= chunk.size()) damaged(where, fmt::format("the column chunk ends after {} of its {} values", read, rows));
    Compact c(chunk.substr(pos), where);
    const PageHeader h = read_page_header(c);
    pos += c.position();
    if (h.compressed_size < 0 || static_cast<uint64_t>(h.compressed_size) > chunk.size() - pos ||
        h.uncompressed_size < 0)
      damaged(where, "a page past its column chunk");
    const std::string_view body = chunk.substr(pos, static_cast<size_t>(h.compressed_size));
    pos += static_cast<size_t>(h.compressed_size);
    if (h.type == 1) continue;  // an index page: nothing to read

    if (h.type == 2) {
      if (h.encoding != kPlain && h.encoding != kPlainDictionary)
        fail(where, fmt::format("a dictionary page in {} encoding", encoding_name(h.encoding)));
      if (h.num_values < 0) damaged(where, "a negative dictionary size");
      const std::string_view data = decompress(m.codec, body, static_cast<uint64_t>(h.uncompressed_size),
                                               dictionary_buffer, dictionary_held, where);
      if (static_cast<uint64_t>(h.num_values) > data.size() / 4) damaged(where, "a dictionary larger than its page");
      dictionary_views_held.need(static_cast<uint64_t>(h.num_values) * sizeof(std::string_view));
      dictionary.clear();
      decode_plain(data, static_cast<size_t>(h.num_values), dictionary, where);
      continue;
    }
    if (h.type != 0 && h.type != 3) damaged(where, fmt::format("a page of unknown type {}", h.type));
    if (h.num_values < 0 || h.num_values > rows - read) damaged(where, "a page with more values than the column");
    const auto n = static_cast<size_t>(h.num_values);
    // Per value: the row kept, and the page's scratch (levels, indices, views, DELTA lengths).
    constexpr uint64_t kScratchPerValue = 2 * sizeof(uint32_t) + 2 * sizeof(std::string_view) + 2 * sizeof(int64_t);
    budget.charge(static_cast<uint64_t>(n) * sizeof(std::optional<std::string>), where);
    scratch_held.need(static_cast<uint64_t>(n) * kScratchPerValue);

    // Definition levels (optional columns: 1 = a value, 0 = null), then the values.
    std::string_view values;
    levels.clear();
    if (h.type == 0) {
      std::string_view rest =
          decompress(m.codec, body, static_cast<uint64_t>(h.uncompressed_size), page_buffer, page_held, where);
      if (optional && h.def_level_encoding == 4)
        fail(where, "definition levels in the BIT_PACKED encoding (deprecated; old parquet-mr files); rewrite the "
                    "file with pyarrow, e.g. python3 -c \"import pandas as p; p.read_parquet('FILE').to_parquet('FILE')\"");
      if (optional) {
        if (rest.size() < 4) damaged(where, "definition levels past the page's end");
        uint32_t len = 0;
        std::memcpy(&len, rest.data(), 4);
        if (len > rest.size() - 4) damaged(where, "definition levels past the page's end");
        decode_hybrid(rest.substr(4, len), 1, n, levels, where);
        rest.remove_prefix(4 + len);
      }
      values = rest;
    } else {
      if (h.rep_bytes != 0) fail(where, "repetition levels in a top-level column");
      if (h.def_bytes < 0 || static_cast<uint64_t>(h.def_bytes) > body.size()) damaged(where, "definition levels past the page's end");
      const auto def_bytes = static_cast<size_t>(h.def_bytes);
      if (optional) decode_hybrid(body.substr(0, def_bytes), 1, n, levels, where);
      const std::string_view compressed = body.substr(def_bytes);
      // parquet-java (Spark) leaves an all-null v2 page's values empty rather than compressing
      // nothing (apache/parquet-java#3122); pyarrow reads that as no values, and so do we.
      if (h.v2_compressed && m.codec != 0 && !compressed.empty()) {
        if (static_cast<uint64_t>(h.uncompressed_size) < def_bytes) damaged(where, "a v2 page smaller than its levels");
        const uint64_t size = static_cast<uint64_t>(h.uncompressed_size) - def_bytes;
        values = decompress(m.codec, compressed, size, page_buffer, page_held, where);
      } else {
        values = compressed;
      }
    }
    size_t present = n;
    if (optional) {
      present = 0;
      for (uint32_t l : levels) {
        if (l > 1) damaged(where, "a definition level above 1 in a top-level column");
        present += l;
      }
    }

    plain.clear();
    if (h.encoding == kPlain) {
      decode_plain(values, present, plain, where);
    } else if (h.encoding == kDeltaLengthByteArray) {
      decode_delta_length(values, present, plain, lengths, where);
    } else if (h.encoding == kDeltaByteArray) {
      decode_delta_byte_array(values, present, plain, arena, prefixes, lengths, suffixes, arena_held, where);
    } else if (h.encoding == kPlainDictionary || h.encoding == kRleDictionary) {
      if (present > 0) {
        if (values.empty()) damaged(where, "dictionary indices without a bit width");
        const int width = static_cast<uint8_t>(values[0]);
        decode_hybrid(values.substr(1), width, present, indices, where);
        for (uint32_t i : indices) {
          if (i >= dictionary.size()) damaged(where, "a dictionary index past the dictionary");
          plain.push_back(dictionary[i]);
        }
      }
    } else {
      fail(where, fmt::format("text values in {} encoding, which autotrain does not read (it reads PLAIN, "
                              "dictionary and DELTA encodings); rewrite the file with pyarrow's defaults, "
                              "e.g. python3 -c \"import pandas as p; p.read_parquet('FILE').to_parquet('FILE')\"",
                              encoding_name(h.encoding)));
    }
    size_t next = 0;
    for (size_t i = 0; i < n; ++i) {
      if (optional && levels[i] == 0) {
        out.emplace_back(std::nullopt);
        continue;
      }
      const std::string_view v = plain[next++];
      budget.charge(v.size(), where);
      if (const size_t bad = io::invalid_utf8_at(v); bad != std::string_view::npos)
        fail(where, fmt::format("row {}: the text is not UTF-8 (byte {}); re-encode the column as UTF-8",
                                out.size() + 1, bad + 1));
      out.emplace_back(std::string(v));
    }
    read += h.num_values;
  }
}

}  // namespace

ColumnText read_parquet_text(std::string_view bytes, const std::string& column, const std::string& where,
                              uint64_t max_bytes) {
  if (max_bytes == 0) max_bytes = physical_memory_bytes();
  TextBudget budget(max_bytes);
  const FileMeta meta = read_footer(bytes, where);
  ColumnText out;

  // The schema is the tree in depth-first order: the root, then each field with its children
  // after it. Column chunks hold the leaves, in the same order.
  const SchemaElement& root = meta.schema[0];
  size_t at = 1;
  int64_t leaf = 0;
  std::optional<int64_t> target_leaf;
  const SchemaElement* target = nullptr;
  // The leaves under the element at `at` (which is consumed with its subtree).
  auto skip_subtree = [&](auto&& self, int depth) -> int64_t {
    if (depth > 64) damaged(where, "a schema nested too deep");
    if (at >= meta.schema.size()) damaged(where, "the schema ends inside a group");
    const SchemaElement& e = meta.schema[at++];
    if (e.num_children <= 0) return 1;
    if (static_cast<uint64_t>(e.num_children) > meta.schema.size()) damaged(where, "a group with too many children");
    int64_t leaves = 0;
    for (int64_t i = 0; i < e.num_children; ++i) leaves += self(self, depth + 1);
    return leaves;
  };
  if (root.num_children < 0 || static_cast<uint64_t>(root.num_children) > meta.schema.size())
    damaged(where, "a root with too many children");
  for (int64_t i = 0; i < root.num_children; ++i) {
    if (at >= meta.schema.size()) damaged(where, "the schema ends early");
    const SchemaElement& e = meta.schema[at];
    out.columns.push_back(e.name);
    if (e.name == column && !target) {
      target = &e;
      if (e.num_children <= 0) target_leaf = leaf;
    }
    leaf += skip_subtree(skip_subtree, 0);
  }
  if (!target) return out;
  out.found = true;
  if (!target_leaf)
    fail(where, fmt::format("column \"{}\" is nested (a list or struct), not text; set TEXT_COLUMN to a column of "
                            "strings (nested fields are not flattened: write the text into a top-level field)",
                            column));
  const bool utf8 = target->converted_type == 0 || target->converted_type == 16 || target->converted_type == 19 ||
                    target->logical_string;
  if (target->type != kByteArray || !utf8) {
    const std::string held = target->type == kByteArray ? std::string("binary data (no UTF8/STRING annotation)")
                                                        : std::string(physical_name(target->type)) + " values";
    fail(where, fmt::format("column \"{}\" holds {}, not text; set TEXT_COLUMN to a column of strings", column, held));
  }
  if (target->repetition == 2) fail(where, fmt::format("column \"{}\" is a repeated field, not text", column));
  const bool optional = target->repetition == 1;

  if (meta.num_rows < 0) damaged(where, "a negative row count");
  // Each row group's chunk of the column must be a place of its own: row groups naming one chunk
  // again and again would make a few KB decode without end (writers lay chunks out in turn).
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const auto& g : meta.row_groups) {
    if (g.num_rows == 0 || static_cast<uint64_t>(*target_leaf) >= g.columns.size()) continue;
    const ColumnMeta& m = g.columns[static_cast<size_t>(*target_leaf)];
    const int64_t start = m.dictionary_page_offset > 0 && m.dictionary_page_offset < m.data_page_offset
                              ? m.dictionary_page_offset
                              : m.data_page_offset;
    if (m.total_compressed_size < 0 || start < 0 || m.total_compressed_size > std::numeric_limits<int64_t>::max() - start)
      damaged(where, "a column chunk outside the file");
    spans.emplace_back(start, start + m.total_compressed_size);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) damaged(where, "row groups whose column chunks overlap or repeat");
  for (const auto& g : meta.row_groups) {
    if (g.num_rows == 0) continue;  // pyarrow writes an empty table as one empty row group
    if (static_cast<uint64_t>(*target_leaf) >= g.columns.size()) damaged(where, "a row group without the column");
    const ColumnMeta& m = g.columns[static_cast<size_t>(*target_leaf)];
    if (m.external)
      fail(where, "the column's data is in another file (ColumnChunk.file_path); give the dataset's data files");
    if (m.type != kByteArray) damaged(where, "a column chunk whose type differs from the schema");
    if (g.num_rows < 0 || m.num_values != g.num_rows) damaged(where, "a column chunk whose count differs from its row group");
    read_chunk(bytes, m, g.num_rows, optional, where, budget, out.values);
  }
  if (static_cast<int64_t>(out.values.size()) != meta.num_rows)
    damaged(where, fmt::format("{} rows in the row groups, {} in the footer", out.values.size(), meta.num_rows));
  return out;
}

ColumnText read_parquet_text_file(const std::filesystem::path& path, const std::string& column) {
  const MappedFile file(path);
  if (file.bytes().empty()) damaged(path.string(), "the file is empty");
  return read_parquet_text(file.bytes(), column, path.string());
}

}  // namespace autotrain::data
