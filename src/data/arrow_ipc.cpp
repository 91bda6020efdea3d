// An Arrow IPC reader for one top-level string column (see autotrain/data/arrow_ipc.h). The
// layout, from the Arrow columnar format specification: a stream of encapsulated messages
// (0xFFFFFFFF, a 4-byte metadata length, a flatbuffer Message, its body), the first a Schema,
// then DictionaryBatches and RecordBatches; the file format wraps the same stream in "ARROW1"
// magic and a footer.
#include "autotrain/data/arrow_ipc.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <lz4frame.h>
#include <zstd.h>

#include "autotrain/io/utf8.h"
#include "mapped_file.h"
#include "zstd_stream.h"

namespace autotrain::data {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DataError(fmt::format("{}: {}", where, what));
}

[[noreturn]] void damaged(const std::string& where, const std::string& what) {
  fail(where, fmt::format("not a readable Arrow IPC file ({}); check the file, or export it as JSON Lines (a "
                          "save_to_disk folder: datasets.load_from_disk(DIR)['train'].to_json('train.jsonl'); a stream "
                          "or Feather file: pyarrow.ipc.open_stream / open_file, then to_pandas().to_json(..., "
                          "orient='records', lines=True))",
                          what));
}

// ---- flatbuffers: tables with vtables, offsets relative to where they are read ----

class Flat {
 public:
  Flat(std::string_view buf, const std::string& where) : b_(buf), where_(where) {}

  template <class T>
  T read(size_t at) const {
    if (at > b_.size() || sizeof(T) > b_.size() - at) damaged(where_, "a message header points past its end");
    T v;
    std::memcpy(&v, b_.data() + at, sizeof(T));
    return v;
  }
  // The table that the offset stored at `at` points to.
  size_t deref(size_t at) const {
    const auto rel = read<uint32_t>(at);
    if (rel > b_.size() - at) damaged(where_, "a message header points past its end");
    return at + rel;
  }
  size_t root() const { return deref(0); }

  // The position of field `id` of the table at `table`, or nothing when the field is absent.
  std::optional<size_t> field(size_t table, int id) const {
    const auto soff = read<int32_t>(table);
    const int64_t vt = static_cast<int64_t>(table) - soff;
    if (vt < 0 || static_cast<uint64_t>(vt) >= b_.size()) damaged(where_, "a table without its vtable");
    const auto vt_size = read<uint16_t>(static_cast<size_t>(vt));
    const size_t slot = 4 + 2 * static_cast<size_t>(id);
    if (slot + 2 > vt_size) return std::nullopt;
    const auto off = read<uint16_t>(static_cast<size_t>(vt) + slot);
    if (off == 0) return std::nullopt;
    return table + off;
  }
  template <class T>
  T scalar(size_t table, int id, T fallback) const {
    const auto at = field(table, id);
    return at ? read<T>(*at) : fallback;
  }
  std::optional<size_t> table(size_t table, int id) const {
    const auto at = field(table, id);
    if (!at) return std::nullopt;
    return deref(*at);
  }
  std::string_view string(size_t table, int id) const {
    const auto at = this->table(table, id);
    if (!at) return {};
    const auto n = read<uint32_t>(*at);
    if (n > b_.size() - *at - 4) damaged(where_, "a name past the header's end");
    return b_.substr(*at + 4, n);
  }
  // A vector field: its length and the position of its first element.
  std::pair<size_t, size_t> vector(size_t table, int id, size_t element_size) const {
    const auto at = this->table(table, id);
    if (!at) return {0, 0};
    const auto n = read<uint32_t>(*at);
    if (element_size && n > (b_.size() - *at - 4) / element_size) damaged(where_, "a list past the header's end");
    return {n, *at + 4};
  }

 private:
  std::string_view b_;
  const std::string& where_;
};

// The Type union of Schema.fbs, and how many buffers each kind of field has in a RecordBatch.
enum TypeId : uint8_t {
  kNull = 1, kInt = 2, kFloatingPoint = 3, kBinary = 4, kUtf8 = 5, kBool = 6, kDecimal = 7, kDate = 8, kTime = 9,
  kTimestamp = 10, kInterval = 11, kList = 12, kStruct = 13, kUnion = 14, kFixedSizeBinary = 15,
  kFixedSizeList = 16, kMap = 17, kDuration = 18, kLargeBinary = 19, kLargeUtf8 = 20, kLargeList = 21,
  kRunEndEncoded = 22, kBinaryView = 23, kUtf8View = 24, kListView = 25, kLargeListView = 26,
};

struct FieldInfo {
  std::string name;
  uint8_t type = 0;
  bool dictionary = false;
  size_t nodes = 1;     // this field and its descendants (one node each)
  size_t buffers = 0;   // theirs, in order; views add their variadic buffers per batch
  size_t views = 0;     // descendants (or itself) of a view type: a variadic count each
  int union_mode = -1;  // 0 sparse, 1 dense
};

// Nodes and buffers of the field at `field` and its children, in the pre-order a RecordBatch
// lists them.
// `visits` counts the fields described so far: a children list may name one table many times,
// and a header can only hold so many real fields (8 bytes each at the least).
FieldInfo describe(const Flat& f, size_t field, const std::string& where, bool v4, size_t& visits, size_t max_visits,
                   int depth = 0) {
  if (depth > 64) damaged(where, "fields nested too deep");
  if (++visits > max_visits) damaged(where, "more fields than its header can hold");
  FieldInfo info;
  info.name = std::string(f.string(field, 0));
  info.type = f.scalar<uint8_t>(field, 2, 0);
  info.dictionary = f.field(field, 4).has_value();
  switch (info.type) {
    case kNull: case kRunEndEncoded: info.buffers = 0; break;
    case kStruct: case kFixedSizeList: info.buffers = 1; break;
    case kInt: case kFloatingPoint: case kBool: case kDecimal: case kDate: case kTime: case kTimestamp:
    case kInterval: case kFixedSizeBinary: case kDuration: case kList: case kLargeList: case kMap:
      info.buffers = 2;
      break;
    case kBinary: case kUtf8: case kLargeBinary: case kLargeUtf8: case kListView: case kLargeListView:
      info.buffers = 3;
      break;
    case kBinaryView: case kUtf8View:
      info.buffers = 2;
      info.views = 1;
      break;
    case kUnion: {
      const auto t = f.table(field, 3);
      info.union_mode = t ? f.scalar<int16_t>(*t, 0, 0) : 0;
      // Metadata V5 dropped the union's validity buffer; V4 files (pyarrow before 1.0) have it.
      info.buffers = (info.union_mode == 1 ? 2 : 1) + (v4 ? 1 : 0);
      break;
    }
    default: damaged(where, fmt::format("a field of unknown type {}", info.type));
  }
  if (info.dictionary) {
    // A dictionary-encoded field's batches hold its indices (validity, integers); the values it
    // names, and their children, come in dictionary batches.
    info.buffers = 2;
    info.views = 0;
    return info;
  }
  const auto [n, first] = f.vector(field, 5, 4);
  for (size_t i = 0; i < n; ++i) {
    const FieldInfo child = describe(f, f.deref(first + 4 * i), where, v4, visits, max_visits, depth + 1);
    info.nodes += child.nodes;
    info.buffers += child.buffers;
    info.views += child.views;
  }
  return info;
}

const char* type_name(uint8_t t) {
  static const char* kNames[] = {"NONE", "only nulls (type null)", "integers", "floats", "binary data", "text", "booleans",
                                 "decimals", "dates", "times", "timestamps", "intervals", "a list", "a struct",
                                 "a union", "binary data", "a list", "a map", "durations", "binary data", "text",
                                 "a list", "run-end encoded values", "binary views", "string views", "a list",
                                 "a list"};
  return t < sizeof kNames / sizeof kNames[0] ? kNames[t] : "an unknown type";
}

// The body's buffers of one RecordBatch table (of a record batch, or of a dictionary batch's
// values), decompressed on demand. Decompressed buffers live, and stay charged to the budget,
// until this goes.
class BatchBuffers {
 public:
  BatchBuffers(const Flat& f, size_t batch, std::string_view body, TextBudget& budget, const std::string& where)
      : f_(f), body_(body), budget_(budget), where_(where) {
    length = f.scalar<int64_t>(batch, 0, 0);
    std::tie(node_count, nodes_at) = f.vector(batch, 1, 16);
    std::tie(buffer_count, buffers_at_) = f.vector(batch, 2, 16);
    std::tie(view_counts, view_counts_at) = f.vector(batch, 4, 8);
    if (const auto c = f.table(batch, 3)) codec_ = f.scalar<int8_t>(*c, 0, 0);
  }
  ~BatchBuffers() { budget_.refund(held_); }
  BatchBuffers(const BatchBuffers&) = delete;
  BatchBuffers& operator=(const BatchBuffers&) = delete;

  // Node `k`: its length and null count.
  std::pair<int64_t, int64_t> node(size_t k) const {
    if (k >= node_count) damaged(where_, "a batch with fewer nodes than its fields");
    return {f_.read<int64_t>(nodes_at + 16 * k), f_.read<int64_t>(nodes_at + 16 * k + 8)};
  }

  // The `k`th of the batch's variadic buffer counts (one per view-typed array, in field order).
  uint64_t variadic_count(size_t k) const {
    if (k >= view_counts) damaged(where_, "fewer variadic buffer counts than view fields");
    const auto n = f_.read<int64_t>(view_counts_at + 8 * k);
    if (n < 0 || static_cast<uint64_t>(n) > buffer_count) damaged(where_, "a variadic buffer count outside the batch's buffers");
    return static_cast<uint64_t>(n);
  }

  // Buffer `k`, decompressed.
  std::string_view buffer(size_t k) {
    if (k >= buffer_count) damaged(where_, "a batch with fewer buffers than its fields");
    const auto offset = f_.read<int64_t>(buffers_at_ + 16 * k);
    const auto size = f_.read<int64_t>(buffers_at_ + 16 * k + 8);
    if (offset < 0 || size < 0 || static_cast<uint64_t>(offset) > body_.size() ||
        static_cast<uint64_t>(size) > body_.size() - static_cast<uint64_t>(offset))
      damaged(where_, "a buffer past its message body");
    std::string_view b = body_.substr(static_cast<size_t>(offset), static_cast<size_t>(size));
    if (!codec_ || b.empty()) return b;
    // A compressed buffer: its uncompressed length (-1: stored as is), then the frame.
    if (b.size() < 8) damaged(where_, "a compressed buffer without its length");
    int64_t raw = 0;
    std::memcpy(&raw, b.data(), 8);
    b.remove_prefix(8);
    if (raw == -1) return b;
    if (raw < 0) damaged(where_, "a negative buffer length");
    if (*codec_ != 0 && *codec_ != 1) damaged(where_, fmt::format("buffers compressed with unknown codec {}", *codec_));
    // Held until the batch is done; grown as output arrives, so a length the frame does not back
    // allocates nothing.
    budget_.charge(static_cast<uint64_t>(raw), where_);
    held_ += static_cast<uint64_t>(raw);
    std::string& dst = owned_.emplace_back();
    const bool ok = *codec_ == 1 ? unzstd(b, static_cast<uint64_t>(raw), dst) : unlz4(b, static_cast<uint64_t>(raw), dst);
    if (!ok || dst.size() != static_cast<uint64_t>(raw))
      damaged(where_, fmt::format("{} buffer that does not decompress to its length", *codec_ == 1 ? "a zstd" : "an LZ4"));
    return dst;
  }

  int64_t length = 0;
  size_t node_count = 0, nodes_at = 0, buffer_count = 0, view_counts = 0, view_counts_at = 0;

 private:
  // zstd: one frame (ZSTD codec).
  static bool unzstd(std::string_view in, uint64_t raw, std::string& dst) {
    const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR || (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != raw)) return false;
    return zstd_decompress(in, raw, dst) == ZstdResult::kDone;
  }
  // LZ4: one LZ4 frame (LZ4_FRAME codec, Feather's default).
  static bool unlz4(std::string_view in, uint64_t raw, std::string& dst) {
    LZ4F_dctx* ctx = nullptr;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) return false;
    const char* next = in.data();
    size_t left = in.size();
    char chunk[1 << 16];
    size_t rc = 1;
    while (rc != 0) {
      size_t out_size = sizeof chunk, in_size = left;
      rc = LZ4F_decompress(ctx, chunk, &out_size, next, &in_size, nullptr);
      if (LZ4F_isError(rc) || out_size > raw - dst.size()) break;
      dst.append(chunk, out_size);
      next += in_size;
      left -= in_size;
      if (rc != 0 && left == 0 && in_size == 0 && out_size == 0) break;  // the frame is cut short
    }
    LZ4F_freeDecompressionContext(ctx);
    return rc == 0 && left == 0;
  }

  const Flat& f_;
  std::string_view body_;
  TextBudget& budget_;
  const std::string& where_;
  size_t buffers_at_ = 0;
  std::optional<int8_t> codec_;
  std::deque<std::string> owned_;  // a deque: views into its strings stay valid as it grows
  uint64_t held_ = 0;
};

// How a string array stores its texts: 32- or 64-bit offsets into one values buffer (string,
// large_string), or 16-byte views, short texts inline and long ones pointing into the batch's
// variadic data buffers (string_view: polars' and newer pyarrow's default).
enum class StringLayout { kOffsets32, kOffsets64, kViews };

// The texts of a string array (validity, then offsets + values or views + data buffers, from
// buffer `first_buffer`; `views_index`: which of the batch's variadic counts is its own),
// appended to `out`; `row_name` words the first row's place in errors ("row 12", "dictionary
// value 3").
void append_texts(BatchBuffers& batch, size_t first_buffer, size_t views_index, int64_t rows, int64_t nulls,
                  StringLayout layout, TextBudget& budget, const std::string& where, const char* row_name,
                  size_t first_row, std::vector<std::optional<std::string>>& out) {
  if (rows < 0 || nulls < 0 || nulls > rows) damaged(where, "a column whose length differs from its batch");
  budget.charge(static_cast<uint64_t>(rows) * sizeof(std::optional<std::string>), where);
  const auto n = static_cast<size_t>(rows);
  const std::string_view validity = batch.buffer(first_buffer);
  if (nulls > 0 && validity.size() * 8 < n) damaged(where, "a validity bitmap shorter than its column");
  auto is_null = [&](size_t i) { return nulls > 0 && !((static_cast<uint8_t>(validity[i / 8]) >> (i % 8)) & 1); };
  auto add = [&](size_t i, std::string_view v) {
    budget.charge(v.size(), where);
    if (const size_t bad = io::invalid_utf8_at(v); bad != std::string_view::npos)
      fail(where, fmt::format("{} {}: the text is not UTF-8 (byte {})", row_name, first_row + i + 1, bad + 1));
    out.emplace_back(std::string(v));
  };

  if (layout == StringLayout::kViews) {
    const std::string_view views = batch.buffer(first_buffer + 1);
    if (n > 0 && views.size() / 16 < n) damaged(where, "a views buffer shorter than its column");
    const uint64_t data_buffers = batch.variadic_count(views_index);
    std::vector<std::optional<std::string_view>> data(static_cast<size_t>(data_buffers));  // read when first used
    for (size_t i = 0; i < n; ++i) {
      if (is_null(i)) {
        out.emplace_back(std::nullopt);
        continue;
      }
      int32_t length = 0, index = 0, offset = 0;
      const char* view = views.data() + 16 * i;
      std::memcpy(&length, view, 4);
      if (length < 0) damaged(where, "a negative text length");
      if (length <= 12) {  // inline, after the length
        add(i, std::string_view(view + 4, static_cast<size_t>(length)));
        continue;
      }
      std::memcpy(&index, view + 8, 4);  // (after a 4-byte prefix of the text)
      std::memcpy(&offset, view + 12, 4);
      if (index < 0 || static_cast<uint64_t>(index) >= data_buffers) damaged(where, "a text view past its data buffers");
      auto& buffer = data[static_cast<size_t>(index)];
      if (!buffer) buffer = batch.buffer(first_buffer + 2 + static_cast<size_t>(index));
      if (offset < 0 || static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > buffer->size())
        damaged(where, "a text view past its data buffer");
      add(i, buffer->substr(static_cast<size_t>(offset), static_cast<size_t>(length)));
    }
    return;
  }

  const bool large = layout == StringLayout::kOffsets64;
  const std::string_view offsets = batch.buffer(first_buffer + 1), values = batch.buffer(first_buffer + 2);
  const size_t width = large ? 8 : 4;
  if (n > 0 && offsets.size() / width < n + 1) damaged(where, "an offsets buffer shorter than its column");
  auto offset_at = [&](size_t i) -> uint64_t {
    int64_t v = 0;
    if (large) {
      std::memcpy(&v, offsets.data() + 8 * i, 8);
    } else {
      int32_t v32 = 0;
      std::memcpy(&v32, offsets.data() + 4 * i, 4);
      v = v32;
    }
    if (v < 0) damaged(where, "a negative text offset");
    return static_cast<uint64_t>(v);
  };
  for (size_t i = 0; i < n; ++i) {
    if (is_null(i)) {
      out.emplace_back(std::nullopt);
      continue;
    }
    const uint64_t begin = offset_at(i), end = offset_at(i + 1);
    if (begin > end || end > values.size()) damaged(where, "a text offset past its values");
    add(i, values.substr(begin, end - begin));
  }
}

// A dictionary-encoded column's index type (DictionaryEncoding.indexType, an Int).
struct IndexType {
  int bits = 32;
  bool is_signed = true;
};

// The text column's state across the messages: its place among the fields, how its texts are
// laid out, and for a dictionary-encoded column the dictionary so far.
class ColumnReader {
 public:
  ColumnReader(const std::string& column, const std::string& where, uint64_t max_bytes, bool file_format)
      : column_(column), where_(where), budget_(max_bytes), file_format_(file_format) {}

  // The Schema table at `schema` (of a Schema message or of the file's footer). False when the
  // column is not there: nothing more to read.
  bool schema(const Flat& f, size_t schema, int16_t version, size_t header_size) {
    if (have_schema_) damaged(where_, "a second schema");
    have_schema_ = true;
    // MetadataVersion: V4 = 3, V5 = 4; older streams predate Arrow 0.15's layouts.
    if (version < 3)
      fail(where_, fmt::format("an Arrow IPC file of metadata version V{} (before Arrow 0.15), which autotrain does not "
                               "read; rewrite it with a current pyarrow",
                               version + 1));
    const bool v4 = version == 3;
    if (f.scalar<int16_t>(schema, 0, 0) != 0)
      fail(where_, "a big-endian Arrow file, which autotrain does not read; rewrite it on a little-endian machine");
    const auto [n, first] = f.vector(schema, 1, 4);
    size_t visits = 0;
    std::optional<size_t> target_table;
    for (size_t i = 0; i < n; ++i) {
      const size_t table = f.deref(first + 4 * i);
      fields_.push_back(describe(f, table, where_, v4, visits, header_size / 8 + 1));
      out.columns.push_back(fields_.back().name);
      if (!target_ && fields_.back().name == column_) {
        target_ = i;
        target_table = table;
      }
    }
    if (!target_) return false;
    out.found = true;
    const FieldInfo& t = fields_[*target_];
    if (t.type != kUtf8 && t.type != kLargeUtf8 && t.type != kUtf8View) {
      fail(where_, fmt::format("column \"{}\" holds {}{}, not text; set TEXT_COLUMN to a column of strings", column_,
                               t.dictionary ? "dictionary-encoded " : "", type_name(t.type)));
    }
    layout_ = t.type == kLargeUtf8  ? StringLayout::kOffsets64
              : t.type == kUtf8View ? StringLayout::kViews
                                    : StringLayout::kOffsets32;
    if (t.dictionary) {
      // A categorical: indices here, the strings in dictionary batches with this id.
      const size_t encoding = *f.table(*target_table, 4);
      dictionary_id_ = f.scalar<int64_t>(encoding, 0, 0);
      if (const auto int_type = f.table(encoding, 1)) {
        index_type_.bits = f.scalar<int32_t>(*int_type, 0, 0);
        index_type_.is_signed = f.scalar<uint8_t>(*int_type, 1, 0) != 0;
      }
      if (index_type_.bits != 8 && index_type_.bits != 16 && index_type_.bits != 32 && index_type_.bits != 64)
        damaged(where_, fmt::format("dictionary indices of {} bits", index_type_.bits));
    }
    return true;
  }

  // One message (its flatbuffer header and body). False when the column is not there.
  bool message(std::string_view meta, std::string_view body) {
    const Flat f(meta, where_);
    const size_t message = f.root();
    const auto header_type = f.scalar<uint8_t>(message, 1, 0);
    const auto body_length = f.scalar<int64_t>(message, 3, 0);
    if (body_length < 0 || static_cast<uint64_t>(body_length) > body.size())
      damaged(where_, "a message body past the file's end");
    body = body.substr(0, static_cast<size_t>(body_length));
    const auto header = f.table(message, 2);
    if (!header) damaged(where_, "a message without a header");
    if (header_type == 1) return schema(f, *header, f.scalar<int16_t>(message, 0, 0), meta.size());
    if (!have_schema_) damaged(where_, "a batch before the schema");
    if (header_type == 2) {
      dictionary_batch(f, *header, body);
    } else if (header_type == 3) {
      record_batch(f, *header, body);
    } else {
      damaged(where_, fmt::format("a message of type {}", header_type));
    }
    return true;
  }

  bool have_schema() const { return have_schema_; }

  ColumnText out;

 private:
  // A DictionaryBatch: the values of a dictionary-encoded column.
  void dictionary_batch(const Flat& f, size_t header, std::string_view body) {
    if (!dictionary_id_ || f.scalar<int64_t>(header, 0, 0) != *dictionary_id_) return;
    const auto data = f.table(header, 1);
    if (!data) damaged(where_, "a dictionary batch without its values");
    const bool delta = f.scalar<uint8_t>(header, 2, 0) != 0;
    if (!delta && have_dictionary_ && file_format_)
      fail(where_, "the text column's dictionary is replaced inside an IPC file, which the format does not allow "
                   "(pyarrow refuses it too); write the file again, or as a stream");
    have_dictionary_ = true;
    if (!delta) {  // a replacement (streams only): the batches after it index the new values
      budget_.refund(dictionary_bytes_);
      std::vector<std::optional<std::string>>().swap(dictionary_);  // its memory goes with its charge
      dictionary_bytes_ = 0;
    }
    BatchBuffers batch(f, *data, body, budget_, where_);
    const auto [rows, nulls] = batch.node(0);
    if (rows != batch.length) damaged(where_, "a dictionary whose length differs from its batch");
    // Charged like the column's own texts; given back when a replacement comes.
    const size_t before = dictionary_.size();
    append_texts(batch, 0, 0, rows, nulls, layout_, budget_, where_, "dictionary value", before, dictionary_);
    for (size_t i = before; i < dictionary_.size(); ++i)
      dictionary_bytes_ += sizeof(std::optional<std::string>) + (dictionary_[i] ? dictionary_[i]->size() : 0);
  }

  // A RecordBatch: where the target's node and buffers are, after those of the fields before it.
  void record_batch(const Flat& f, size_t header, std::string_view body) {
    BatchBuffers batch(f, header, body, budget_, where_);
    size_t node = 0, buffer = 0, view = 0;
    for (size_t i = 0; i < *target_; ++i) {
      // A view-typed field's data buffers vary per batch: the batch lists their counts.
      for (size_t v = 0; v < fields_[i].views; ++v) buffer += static_cast<size_t>(batch.variadic_count(view + v));
      view += fields_[i].views;
      node += fields_[i].nodes;
      buffer += fields_[i].buffers;
    }
    const auto [rows, nulls] = batch.node(node);
    if (rows != batch.length) damaged(where_, "a column whose length differs from its batch");
    if (!dictionary_id_) {
      append_texts(batch, buffer, view, rows, nulls, layout_, budget_, where_, "row", out.values.size(), out.values);
      return;
    }
    // Indices into the dictionary (validity, then integers of the index type).
    if (nulls < 0 || nulls > rows) damaged(where_, "a column whose length differs from its batch");
    budget_.charge(static_cast<uint64_t>(rows) * sizeof(std::optional<std::string>), where_);
    const std::string_view validity = batch.buffer(buffer), indices = batch.buffer(buffer + 1);
    const auto n = static_cast<size_t>(rows);
    const size_t width = static_cast<size_t>(index_type_.bits) / 8;
    if (indices.size() / width < n) damaged(where_, "an indices buffer shorter than its column");
    if (nulls > 0 && validity.size() * 8 < n) damaged(where_, "a validity bitmap shorter than its column");
    for (size_t i = 0; i < n; ++i) {
      if (nulls > 0 && !((static_cast<uint8_t>(validity[i / 8]) >> (i % 8)) & 1)) {
        out.values.emplace_back(std::nullopt);
        continue;
      }
      uint64_t raw = 0;
      std::memcpy(&raw, indices.data() + width * i, width);  // little-endian
      if (index_type_.is_signed && width < 8 && (raw >> (8 * width - 1)) & 1) raw |= ~uint64_t{0} << (8 * width);
      if (index_type_.is_signed && static_cast<int64_t>(raw) < 0) damaged(where_, "a negative dictionary index");
      if (raw >= dictionary_.size()) damaged(where_, "a dictionary index past its dictionary");
      const auto& v = dictionary_[static_cast<size_t>(raw)];
      if (v) budget_.charge(v->size(), where_);
      out.values.push_back(v);
    }
  }

  const std::string& column_;
  const std::string& where_;
  TextBudget budget_;
  bool have_schema_ = false;
  std::optional<size_t> target_;  // among the top-level fields
  std::vector<FieldInfo> fields_;
  StringLayout layout_ = StringLayout::kOffsets32;
  std::optional<int64_t> dictionary_id_;
  IndexType index_type_;
  std::vector<std::optional<std::string>> dictionary_;
  uint64_t dictionary_bytes_ = 0;
  bool have_dictionary_ = false;
  bool file_format_;
};

// An encapsulated message at `pos`: [0xFFFFFFFF] int32 length, the flatbuffer (padded); its
// length is 0 at the end of a stream. `pos` moves past the flatbuffer.
std::optional<std::string_view> next_message(std::string_view bytes, size_t& pos, const std::string& where) {
  if (bytes.size() - pos < 4) damaged(where, "a message cut short");
  uint32_t word = 0;
  std::memcpy(&word, bytes.data() + pos, 4);
  pos += 4;
  if (word == 0xFFFFFFFFu) {
    if (bytes.size() - pos < 4) damaged(where, "a message cut after its marker");
    std::memcpy(&word, bytes.data() + pos, 4);
    pos += 4;
  }
  if (word == 0) return std::nullopt;  // end of stream
  if (word > bytes.size() - pos) damaged(where, "a message header past the file's end");
  const std::string_view meta = bytes.substr(pos, word);
  pos += word;
  return meta;
}

// The IPC file format: "ARROW1", padding, a stream, the footer (a flatbuffer: the schema and
// where each dictionary and record batch is), its int32 length, "ARROW1". Read through the
// footer, as pyarrow reads it: some writers (polars) do not repeat the schema as the stream's
// first message.
void read_file_format(std::string_view bytes, ColumnReader& reader, const std::string& where) {
  if (bytes.size() < 6 + 2 + 4 + 6 || bytes.substr(bytes.size() - 6) != "ARROW1")
    damaged(where, "an Arrow file without its footer (cut short?)");
  int32_t footer_length = 0;
  std::memcpy(&footer_length, bytes.data() + bytes.size() - 10, 4);
  if (footer_length <= 0 || static_cast<uint64_t>(footer_length) > bytes.size() - 18)
    damaged(where, "a footer length past the file's start");
  const std::string_view footer = bytes.substr(bytes.size() - 10 - static_cast<size_t>(footer_length),
                                               static_cast<size_t>(footer_length));
  const Flat f(footer, where);
  const size_t root = f.root();
  const auto schema = f.table(root, 1);
  if (!schema) damaged(where, "a footer without a schema");
  if (!reader.schema(f, *schema, f.scalar<int16_t>(root, 0, 0), footer.size())) return;
  // Every entry must be a place of its own: entries naming one batch again and again would make
  // a few KB decode without end (writers lay the batches out one after another).
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const int list : {2, 3}) {
    const auto [n, first] = f.vector(root, list, 24);
    for (size_t i = 0; i < n; ++i) {
      // (Wrapped sums of negative fields only make more overlaps; those entries are refused anyway.)
      const auto offset = static_cast<uint64_t>(f.read<int64_t>(first + 24 * i));
      const auto meta = static_cast<uint64_t>(static_cast<int64_t>(f.read<int32_t>(first + 24 * i + 8)));
      const auto body = static_cast<uint64_t>(f.read<int64_t>(first + 24 * i + 16));
      spans.emplace_back(offset, offset + meta + body);
    }
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) damaged(where, "footer entries that overlap or repeat");
  // Dictionaries first (a file may not replace one, only extend it), then the record batches.
  for (const int list : {2, 3}) {
    const auto [n, first] = f.vector(root, list, 24);
    for (size_t i = 0; i < n; ++i) {
      const auto offset = f.read<int64_t>(first + 24 * i);
      const auto meta_length = f.read<int32_t>(first + 24 * i + 8);
      const auto body_length = f.read<int64_t>(first + 24 * i + 16);
      if (offset < 8 || meta_length < 8 || body_length < 0 || static_cast<uint64_t>(offset) > bytes.size() ||
          static_cast<uint64_t>(meta_length) > bytes.size() - static_cast<uint64_t>(offset) ||
          static_cast<uint64_t>(body_length) >
              bytes.size() - static_cast<uint64_t>(offset) - static_cast<uint64_t>(meta_length))
        damaged(where, "a footer entry past the file's end");
      const std::string_view block = bytes.substr(static_cast<size_t>(offset), static_cast<size_t>(meta_length));
      size_t pos = 0;
      const auto meta = next_message(block, pos, where);
      if (!meta) damaged(where, "a footer entry pointing at the end of the stream");
      const std::string_view body = bytes.substr(static_cast<size_t>(offset) + static_cast<size_t>(meta_length),
                                                 static_cast<size_t>(body_length));
      const Flat message(*meta, where);
      if (message.scalar<uint8_t>(message.root(), 1, 0) != (list == 2 ? 2 : 3))
        damaged(where, "a footer entry pointing at another kind of message");
      reader.message(*meta, body);
    }
  }
}

}  // namespace

ColumnText read_arrow_text(std::string_view bytes, const std::string& column, const std::string& where,
                            uint64_t max_bytes) {
  if (max_bytes == 0) max_bytes = physical_memory_bytes();
  if (bytes.substr(0, 4) == "FEA1")
    fail(where, "a Feather v1 file, which autotrain does not read; rewrite it as Feather v2: python3 -c \"import "
                "pyarrow.feather as f; f.write_feather(f.read_table('FILE'), 'FILE')\"");
  const bool file_format = bytes.substr(0, 6) == "ARROW1";
  ColumnReader reader(column, where, max_bytes, file_format);
  if (file_format) {
    read_file_format(bytes, reader, where);
    return std::move(reader.out);
  }
  // A stream: a Schema message, then dictionary and record batches, each followed by its body.
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto meta = next_message(bytes, pos, where);
    if (!meta) break;
    // The body's length is in the header; the rest of the file bounds it.
    const std::string_view rest = bytes.substr(pos);
    const Flat f(*meta, where);
    const auto body_length = f.scalar<int64_t>(f.root(), 3, 0);
    if (body_length < 0 || static_cast<uint64_t>(body_length) > rest.size())
      damaged(where, "a message body past the file's end");
    pos += static_cast<size_t>(body_length);
    if (!reader.message(*meta, rest)) return std::move(reader.out);
  }
  if (!reader.have_schema()) damaged(where, "no schema message");
  return std::move(reader.out);
}

ColumnText read_arrow_text_file(const std::filesystem::path& path, const std::string& column) {
  const MappedFile file(path);
  return read_arrow_text(file.bytes(), column, path.string());
}

}  // namespace autotrain::data
