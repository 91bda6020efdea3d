#include "autotrain/safetensors/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autotrain/io/atomic_file.h"
#include "autotrain/io/temp_paths.h"

namespace autotrain::safetensors {

namespace {

// A file written under a temporary name in its final folder and renamed into place only when
// complete: readers see the old file or the new one, never half of it. (io::write_file_atomic
// takes the whole content at once; checkpoints are streamed tensor by tensor instead.)
class AtomicOutput {
 public:
  explicit AtomicOutput(std::filesystem::path path) : path_(std::move(path)) {
    tmp_ = io::temporary_path_for(path_);
    removed_if_interrupted_.emplace(tmp_, io::TempPath::Kind::kFile);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("creating a temporary file");
  }
  ~AtomicOutput() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("writing");
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void commit() {
    if (::fsync(fd_) != 0) fail("flushing");
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("closing");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("renaming into place");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(std::string_view what) {
    throw SafetensorsError(fmt::format("cannot write {}: {}: {}", path_.string(), what, std::strerror(errno)));
  }
  std::filesystem::path path_, tmp_;
  std::optional<io::TempPath> removed_if_interrupted_;
  int fd_ = -1;
  bool committed_ = false;
};

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

std::vector<TensorInfo> plan_layout(const std::vector<TensorData>& tensors, std::string_view where) {
  std::vector<const TensorData*> order;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__")
      throw SafetensorsError(fmt::format("{}: '__metadata__' is reserved and cannot name a tensor", where));
    if (!valid_utf8(t.name))
      throw SafetensorsError(fmt::format("{}: tensor name '{}' is not valid UTF-8", where, t.name));
    if (!names.insert(t.name).second)
      throw SafetensorsError(fmt::format("{}: tensor '{}' given twice", where, t.name));
    uint64_t need = byte_size(t.dtype, t.shape, where, t.name);
    if (need != t.data.size())
      throw SafetensorsError(fmt::format("{}: tensor '{}': {} × shape needs {} bytes, data has {}", where, t.name,
                                         dtype_name(t.dtype), need, t.data.size()));
    order.push_back(&t);
  }
  // The reference writer's order: dtype descending (its enum order), then name ascending.
  std::stable_sort(order.begin(), order.end(), [](const TensorData* a, const TensorData* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });
  std::vector<TensorInfo> layout;
  uint64_t pos = 0;
  for (const TensorData* t : order) {
    layout.push_back({t->name, t->dtype, t->shape, pos, pos + t->data.size()});
    pos += t->data.size();
  }
  return layout;
}

std::string serialize_header(const std::vector<TensorInfo>& layout, const Metadata& metadata) {
  // Built by hand to fix the key order the reference uses (metadata first, then tensors in
  // layout order, fields dtype/shape/data_offsets); strings are escaped by nlohmann.
  std::string out = "{";
  auto str = [](const std::string& s) { return nlohmann::json(s).dump(); };
  bool first = true;
  if (!metadata.empty()) {
    out += "\"__metadata__\":{";
    bool f = true;
    for (const auto& [k, v] : metadata) {
      out += fmt::format("{}{}:{}", f ? "" : ",", str(k), str(v));
      f = false;
    }
    out += "}";
    first = false;
  }
  for (const auto& t : layout) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); ++i) shape += fmt::format("{}{}", i ? "," : "", t.shape[i]);
    out += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", first ? "" : ",",
                       str(t.name), dtype_name(t.dtype), shape, t.begin, t.end);
    first = false;
  }
  out += "}";
  out.append((8 - out.size() % 8) % 8, ' ');
  return out;
}

void write_file(const std::filesystem::path& path, const std::vector<TensorData>& tensors, const Metadata& metadata) {
  std::vector<TensorInfo> layout = plan_layout(tensors, path.string());
  std::string header = serialize_header(layout, metadata);
  std::map<std::string_view, const TensorData*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;

  AtomicOutput out(path);
  unsigned char len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, 8);
  out.write(header.data(), header.size());
  for (const auto& t : layout) {
    const auto& d = by_name.at(t.name)->data;
    out.write(d.data(), d.size());
  }
  out.commit();
}

std::string serialize_index(const ShardIndex& index) {
  // json.dumps(index, indent=2, sort_keys=True) + "\n": std::map keys are already sorted and
  // nlohmann's ensure_ascii escaping matches Python's default.
  nlohmann::json j;
  j["metadata"]["total_parameters"] = index.total_parameters;
  j["metadata"]["total_size"] = index.total_size;
  j["weight_map"] = nlohmann::json::object();
  for (const auto& [k, v] : index.weight_map) j["weight_map"][k] = v;
  return j.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
}

ShardIndex write_sharded(const std::filesystem::path& dir, const std::vector<TensorData>& tensors,
                         uint64_t max_shard_bytes, const Metadata& metadata) {
  std::vector<std::vector<TensorData>> shards(1);
  uint64_t in_shard = 0;
  for (const auto& t : tensors) {
    if (!shards.back().empty() && in_shard + t.data.size() > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(t);
    in_shard += t.data.size();
  }
  ShardIndex index;
  const size_t k = shards.size();
  for (size_t i = 0; i < k; ++i) {
    std::string name = k == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, k);
    write_file(dir / name, shards[i], metadata);
    for (const auto& t : shards[i]) {
      index.weight_map[t.name] = name;
      index.total_size += t.data.size();
      uint64_t numel = 1;
      for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
      index.total_parameters += numel;
    }
  }
  if (k > 1) io::write_file_atomic(dir / "model.safetensors.index.json", serialize_index(index));
  return index;
}

}  // namespace autotrain::safetensors
