// An Arrow IPC reader for one top-level string column (see autotrain/data/arrow_ipc.h). The
// layout, from the Arrow columnar format specification: a stream of encapsulated messages
// (0xFFFFFFFF, a 4-byte metadata length, a flatbuffer Message, its body), the first a Schema,
// then RecordBatches; the file format wraps the same stream in "ARROW1" magic and a footer.
#include "autotrain/data/arrow_ipc.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zstd.h>

#include "autotrain/io/utf8.h"
#include "mapped_file.h"

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


}  // namespace

ColumnText read_arrow_text(std::string_view bytes, const std::string& column, const std::string& where,
                            uint64_t max_bytes) {
  if (max_bytes == 0) max_bytes = physical_memory_bytes();
  TextBudget budget(max_bytes);
  size_t pos = 0;
  // The IPC file format: "ARROW1", two bytes of padding, the stream, a footer, "ARROW1".
  if (bytes.substr(0, 6) == "ARROW1") pos = std::min<size_t>(8, bytes.size());
  if (bytes.substr(0, 4) == "FEA1")
    fail(where, "a Feather v1 file, which autotrain does not read; rewrite it as Feather v2: python3 -c \"import "
                "pyarrow.feather as f; f.write_feather(f.read_table('FILE'), 'FILE')\"");

  ColumnText out;
  bool have_schema = false;
  std::optional<size_t> target_index;  // among the top-level fields
  std::vector<FieldInfo> fields;
  bool v4 = false;
  std::vector<std::string> owned;  // decompressed buffers of the current batch
  for (;;) {
    // An encapsulated message: [0xFFFFFFFF] int32 length, the flatbuffer (padded), the body.
    if (bytes.size() - pos < 4) {
      if (!have_schema) damaged(where, "no schema message");
      break;  // a stream without its end-of-stream marker: what is there is read
    }
    uint32_t word = 0;
    std::memcpy(&word, bytes.data() + pos, 4);
    pos += 4;
    if (word == 0xFFFFFFFFu) {
      if (bytes.size() - pos < 4) damaged(where, "a message cut after its marker");
      std::memcpy(&word, bytes.data() + pos, 4);
      pos += 4;
    }
    if (word == 0) break;  // end of stream
    if (word > bytes.size() - pos) damaged(where, "a message header past the file's end");
    const std::string_view meta = bytes.substr(pos, word);
    pos += word;
    const Flat f(meta, where);
    const size_t message = f.root();
    const auto header_type = f.scalar<uint8_t>(message, 1, 0);
    const auto body_length = f.scalar<int64_t>(message, 3, 0);
    if (body_length < 0 || static_cast<uint64_t>(body_length) > bytes.size() - pos)
      damaged(where, "a message body past the file's end");
    const std::string_view body = bytes.substr(pos, static_cast<size_t>(body_length));
    pos += static_cast<size_t>(body_length);
    const auto header = f.table(message, 2);
    if (!header) damaged(where, "a message without a header");

    if (header_type == 1) {  // Schema
      if (have_schema) damaged(where, "a second schema");
      have_schema = true;
      // MetadataVersion: V4 = 3, V5 = 4; older streams predate Arrow 0.15's layouts.
      const auto version = f.scalar<int16_t>(message, 0, 0);
      if (version < 3)
        fail(where, fmt::format("an Arrow IPC file of metadata version V{} (before Arrow 0.15), which autotrain does not "
                                "read; rewrite it with a current pyarrow",
                                version + 1));
      v4 = version == 3;
      if (f.scalar<int16_t>(*header, 0, 0) != 0)
        fail(where, "a big-endian Arrow file, which autotrain does not read; rewrite it on a little-endian machine");
      const auto [n, first] = f.vector(*header, 1, 4);
      size_t visits = 0;
      for (size_t i = 0; i < n; ++i) {
        fields.push_back(describe(f, f.deref(first + 4 * i), where, v4, visits, meta.size() / 8 + 1));
        out.columns.push_back(fields.back().name);
        if (!target_index && fields.back().name == column) target_index = i;
      }
      if (!target_index) return out;
      out.found = true;
      const FieldInfo& t = fields[*target_index];
      if (t.type != kUtf8 && t.type != kLargeUtf8) {
        fail(where, fmt::format("column \"{}\" holds {}, not text; set TEXT_COLUMN to a column of strings{}", column,
                                type_name(t.type),
                                t.type == kUtf8View ? " (or cast this one to string with pyarrow)" : ""));
      }
      if (t.dictionary)
        fail(where, fmt::format("column \"{}\" is dictionary-encoded (a categorical); cast it to string, e.g. "
                                "dataset.cast_column('{}', datasets.Value('string'))",
                                column, column));
      continue;
    }
    if (header_type == 2) {  // a DictionaryBatch: for dictionary-encoded columns, not ours
      continue;
    }
    if (header_type != 3) damaged(where, fmt::format("a message of type {}", header_type));
    if (!have_schema) damaged(where, "a record batch before the schema");

    // A RecordBatch: where the target's node and buffers are, after those of the fields before it.
    const auto length = f.scalar<int64_t>(*header, 0, 0);
    const auto [node_count, nodes_at] = f.vector(*header, 1, 16);
    // (Plain variables, not a structured binding: the lambda below captures them.)
    const auto buffer_list = f.vector(*header, 2, 16);
    const size_t buffer_count = buffer_list.first, buffers_at = buffer_list.second;
    const auto [view_counts, view_counts_at] = f.vector(*header, 4, 8);
    std::optional<int8_t> codec;
    if (const auto c = f.table(*header, 3)) codec = f.scalar<int8_t>(*c, 0, 0);
    size_t node = 0, buffer = 0, view = 0;
    for (size_t i = 0; i < *target_index; ++i) {
      if (fields[i].views > 0) {
        // A view-typed field's data buffers vary per batch: the batch lists their counts.
        if (fields[i].views > view_counts - view) damaged(where, "fewer variadic buffer counts than view fields");
        for (size_t v = 0; v < fields[i].views; ++v)
        {
          const auto extra = f.read<int64_t>(view_counts_at + 8 * (view + v));
          if (extra < 0 || static_cast<uint64_t>(extra) > buffer_count)
            damaged(where, "a variadic buffer count outside the batch's buffers");
          buffer += static_cast<size_t>(extra);
        }
        view += fields[i].views;
      }
      node += fields[i].nodes;
      buffer += fields[i].buffers;
    }
    if (node >= node_count || buffer + 3 > buffer_count) damaged(where, "a record batch with fewer buffers than fields");
    const auto rows = f.read<int64_t>(nodes_at + 16 * node);
    const auto nulls = f.read<int64_t>(nodes_at + 16 * node + 8);
    if (rows < 0 || rows != length || nulls < 0 || nulls > rows)
      damaged(where, "a column whose length differs from its batch");
    budget.charge(static_cast<uint64_t>(rows) * sizeof(std::optional<std::string>), where);

    // Its three buffers (validity, offsets, values), decompressed when the batch is compressed.
    owned.clear();
    owned.reserve(3);
    uint64_t batch_bytes = 0;  // the decompressed buffers, given back to the budget after the batch
    auto buffer_view = [&](size_t k) -> std::string_view {
      const auto offset = f.read<int64_t>(buffers_at + 16 * (buffer + k));
      const auto size = f.read<int64_t>(buffers_at + 16 * (buffer + k) + 8);
      if (offset < 0 || size < 0 || static_cast<uint64_t>(offset) > body.size() ||
          static_cast<uint64_t>(size) > body.size() - static_cast<uint64_t>(offset))
        damaged(where, "a buffer past its message body");
      std::string_view b = body.substr(static_cast<size_t>(offset), static_cast<size_t>(size));
      if (!codec || b.empty()) return b;
      // A compressed buffer: its uncompressed length (-1: stored as is), then the frame.
      if (b.size() < 8) damaged(where, "a compressed buffer without its length");
      int64_t raw = 0;
      std::memcpy(&raw, b.data(), 8);
      b.remove_prefix(8);
      if (raw == -1) return b;
      if (*codec != 1)
        fail(where, "buffers compressed with LZ4, which autotrain does not read (it reads zstd and uncompressed); "
                    "rewrite the file with compression='zstd' or none");
      if (raw < 0) damaged(where, "a negative buffer length");
      const unsigned long long declared = ZSTD_getFrameContentSize(b.data(), b.size());
      if (declared == ZSTD_CONTENTSIZE_ERROR || (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != static_cast<uint64_t>(raw)))
        damaged(where, "a zstd buffer that does not decompress to its length");
      // Held for this batch only; grown as output arrives, so a length the frame does not back
      // allocates nothing.
      budget.charge(static_cast<uint64_t>(raw), where);
      batch_bytes += static_cast<uint64_t>(raw);
      owned.emplace_back();
      std::string& dst = owned.back();
      ZSTD_DCtx* ctx = ZSTD_createDCtx();
      ZSTD_inBuffer in{b.data(), b.size(), 0};
      char chunk[1 << 16];
      size_t rc = 1;
      while (ctx && (in.pos < in.size || rc != 0)) {
        ZSTD_outBuffer o{chunk, sizeof chunk, 0};
        const size_t before = in.pos;
        rc = ZSTD_decompressStream(ctx, &o, &in);
        if (ZSTD_isError(rc) || dst.size() + o.pos > static_cast<uint64_t>(raw)) break;
        dst.append(chunk, o.pos);
        if (in.pos == in.size && in.pos == before && o.pos == 0) break;
      }
      ZSTD_freeDCtx(ctx);
      if (!ctx || ZSTD_isError(rc) || rc != 0 || dst.size() != static_cast<uint64_t>(raw))
        damaged(where, "a zstd buffer that does not decompress to its length");
      return dst;
    };
    const std::string_view validity = buffer_view(0), offsets = buffer_view(1), values = buffer_view(2);
    const bool large = fields[*target_index].type == kLargeUtf8;
    const size_t width = large ? 8 : 4;
    const auto n = static_cast<size_t>(rows);
    if (n > 0 && offsets.size() / width < n + 1) damaged(where, "an offsets buffer shorter than its column");
    if (nulls > 0 && validity.size() * 8 < n) damaged(where, "a validity bitmap shorter than its column");
    auto offset_at = [&](size_t i) -> uint64_t {
      if (large) {
        int64_t v = 0;
        std::memcpy(&v, offsets.data() + 8 * i, 8);
        if (v < 0) damaged(where, "a negative text offset");
        return static_cast<uint64_t>(v);
      }
      int32_t v = 0;
      std::memcpy(&v, offsets.data() + 4 * i, 4);
      if (v < 0) damaged(where, "a negative text offset");
      return static_cast<uint64_t>(v);
    };
    for (size_t i = 0; i < n; ++i) {
      if (nulls > 0 && !((static_cast<uint8_t>(validity[i / 8]) >> (i % 8)) & 1)) {
        out.values.emplace_back(std::nullopt);
        continue;
      }
      const uint64_t begin = offset_at(i), end = offset_at(i + 1);
      if (begin > end || end > values.size()) damaged(where, "a text offset past its values");
      const std::string_view v = values.substr(begin, end - begin);
      budget.charge(v.size(), where);
      if (const size_t bad = io::invalid_utf8_at(v); bad != std::string_view::npos)
        fail(where, fmt::format("row {}: the text is not UTF-8 (byte {})", out.values.size() + 1, bad + 1));
      out.values.emplace_back(std::string(v));
    }
    budget.refund(batch_bytes);
  }
  if (!have_schema) damaged(where, "no schema message");
  return out;
}

ColumnText read_arrow_text_file(const std::filesystem::path& path, const std::string& column) {
  const MappedFile file(path);
  return read_arrow_text(file.bytes(), column, path.string());
}

}  // namespace autotrain::data
