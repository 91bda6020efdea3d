// Collectives over c10d's TCPStore (see process_group.h for why not Gloo/NCCL).
//
// One round (`exchange`) per collective: rank r writes its bytes under "x/<round>/<r>" and reads
// every other rank's once all are there. A key is deleted by its writer two rounds later: by
// then every rank has read it (a rank writes round k+1's key only after reading all of round k).
#include "autotrain/dist/process_group.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace autotrain::dist {

namespace {
constexpr const char* kAbortKey = "abort";  // the first failure: "<rank>\n<message>"
// The store's server refuses values over 8 MiB (LibTorch's libuv backend): larger payloads go
// in chunks of this size, each under its own key.
constexpr size_t kChunkBytes = size_t{4} << 20;
}

struct ProcessGroup::State {
  WorldInfo world;
  c10::intrusive_ptr<c10d::TCPStore> store;
  std::chrono::milliseconds wait_timeout{};
  int64_t round = 0;
  bool aborted = false;  // this rank failed: its exit waits for nobody
  bool broken = false;   // the store failed us (a peer's abort, rank 0 gone): leave without a word
  std::function<int()> pending_stop;
  std::chrono::milliseconds stop_grace{};
  std::vector<int64_t> chunks_written;  // per round (index round-1): how many value keys this rank wrote
  std::string key(const std::string& name) const { return world.key_prefix + name; }
  bool rank0_hosts() const { return !world.agent_store; }
};

ProcessGroup::ProcessGroup(std::unique_ptr<State> state) : s_(std::move(state)) {}
// Rank 0 hosts the store: it must not take it away while another rank still reads the last
// round. Each other rank says it is leaving; rank 0 waits for them (a while at most: one that
// died never says so).
ProcessGroup::~ProcessGroup() {
  // After a failure the store may be gone: a call would only add c10d's warnings to the error.
  if (s_->broken) return;
  try {
    const int rank = s_->world.rank, size = s_->world.world_size;
    if (rank != 0) {
      s_->store->set(s_->key(fmt::format("left/{}", rank)), std::vector<uint8_t>{1});
      return;
    }
    if (s_->aborted || !s_->rank0_hosts()) return;
    std::vector<std::string> left;
    for (int r = 1; r < size; ++r) left.push_back(s_->key(fmt::format("left/{}", r)));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!s_->store->check(left) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } catch (...) {
  }
}

int ProcessGroup::rank() const { return s_->world.rank; }
int ProcessGroup::size() const { return s_->world.world_size; }

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const WorldInfo& world, std::chrono::milliseconds connect_timeout,
                                                    std::chrono::milliseconds wait_timeout) {
  auto s = std::make_unique<State>();
  s->world = world;
  s->wait_timeout = wait_timeout;
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(world.master_port);
  // Rank 0 hosts the store, unless torchrun's agent already does at that address.
  opts.isServer = world.rank == 0 && !world.agent_store;
  if (!world.agent_store) opts.numWorkers = static_cast<size_t>(world.world_size);
  opts.waitWorkers = !world.agent_store;
  opts.timeout = connect_timeout;
  const auto start = std::chrono::steady_clock::now();
  try {
    s->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, opts);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
    throw DistError(fmt::format(
        "rank {} of {} could not {} {}:{} (gave up after {} s; {}): {}; {}", world.rank, world.world_size,
        world.rank == 0 ? "open the rendezvous on" : "reach rank 0 at", world.master_addr, world.master_port,
        waited.count(), world.source, what.substr(0, what.find('\n')),
        world.rank == 0 ? "choose another MASTER_PORT (--master-port) if that one is in use"
                        : "check that every process was started, and MASTER_ADDR/MASTER_PORT"));
  }
  auto group = std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(s)));
  if (world.agent_store) group->barrier();  // every rank there, as waitWorkers does for our own store
  return group;
}

std::vector<std::vector<uint8_t>> ProcessGroup::exchange(std::vector<uint8_t> mine) {
  const int64_t round = ++s_->round;
  const int rank = s_->world.rank, size = s_->world.world_size;
  // "x/<round>/<rank>" holds the chunk count, written after the chunks "x/<round>/<rank>/<i>".
  auto head = [&](int64_t k, int r) { return s_->key(fmt::format("x/{}/{}", k, r)); };
  auto chunk = [&](int64_t k, int r, int64_t i) { return s_->key(fmt::format("x/{}/{}/{}", k, r, i)); };
  std::vector<std::string> others;
  for (int r = 0; r < size; ++r)
    if (r != rank) others.push_back(head(round, r));
  const std::string abort_key = s_->key(kAbortKey);
  std::vector<std::vector<uint8_t>> all(static_cast<size_t>(size));
  try {
    const auto chunks = static_cast<int64_t>((mine.size() + kChunkBytes - 1) / kChunkBytes);
    for (int64_t i = 0; i < chunks; ++i) {
      const size_t from = static_cast<size_t>(i) * kChunkBytes, to = std::min(mine.size(), from + kChunkBytes);
      s_->store->set(chunk(round, rank, i), std::vector<uint8_t>(mine.begin() + static_cast<ptrdiff_t>(from),
                                                                 mine.begin() + static_cast<ptrdiff_t>(to)));
    }
    const std::string count = std::to_string(chunks);
    s_->store->set(head(round, rank), std::vector<uint8_t>(count.begin(), count.end()));
    s_->chunks_written.push_back(chunks);
    if (round > 2) {
      s_->store->deleteKey(head(round - 2, rank));
      for (int64_t i = 0; i < s_->chunks_written[static_cast<size_t>(round - 3)]; ++i)
        s_->store->deleteKey(chunk(round - 2, rank, i));
    }
    // Polled rather than a blocking wait, so that another rank's abort is seen at once.
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> stop_seen;
    auto pause = std::chrono::microseconds(20);
    for (int polls = 0; !s_->store->check(others); ++polls) {
      if (const int sig = s_->pending_stop ? s_->pending_stop() : 0; sig != 0) {
        const auto now = std::chrono::steady_clock::now();
        if (!stop_seen) stop_seen = now;
        if (now - *stop_seen > s_->stop_grace) {
          s_->broken = true;
          throw StoppedWaiting(fmt::format("rank {}: asked to stop (signal {}), and the other ranks did not come "
                                           "within {} s: one of them is gone; stopping without a checkpoint",
                                           rank, sig, s_->stop_grace.count() / 1000),
                               sig);
        }
      }
      if (polls % 16 == 15 && s_->store->check({abort_key})) {
        const auto value = s_->store->get(abort_key);
        const std::string text(value.begin(), value.end());
        const size_t newline = text.find('\n');
        s_->store->set(s_->key(fmt::format("seen/{}", rank)), std::vector<uint8_t>{1});
        s_->broken = true;
        throw PeerFailure(text.substr(newline + 1), std::atoi(text.substr(0, newline).c_str()));
      }
      if (s_->wait_timeout.count() > 0 && std::chrono::steady_clock::now() - start > s_->wait_timeout)
        throw DistError(fmt::format("rank {}: the other ranks did not answer within {} s (a rank stuck or gone?)",
                                    rank, s_->wait_timeout.count() / 1000));
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(2000));
    }
    for (int r = 0; r < size; ++r) {
      if (r == rank) {
        all[static_cast<size_t>(r)] = std::move(mine);
        continue;
      }
      const auto n_bytes = s_->store->get(head(round, r));
      const int64_t n = std::atoll(std::string(n_bytes.begin(), n_bytes.end()).c_str());
      if (n == 0) continue;
      std::vector<std::string> keys;
      for (int64_t i = 0; i < n; ++i) keys.push_back(chunk(round, r, i));
      auto parts = s_->store->multiGet(keys);
      auto& out = all[static_cast<size_t>(r)];
      for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    }
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& e) {
    s_->broken = true;
    const std::string what = e.what();
    throw DistError(fmt::format("rank {} lost the connection to the rendezvous at {}:{} (did rank 0 stop?): {}", rank,
                                s_->world.master_addr, s_->world.master_port, what.substr(0, what.find('\n'))));
  }
  return all;
}

void ProcessGroup::all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op) {
  std::vector<at::Tensor> host;
  size_t bytes = 0;
  for (const auto& t : tensors) {
    host.push_back(t.detach().to(at::kCPU).contiguous());
    bytes += host.back().nbytes();
  }
  std::vector<uint8_t> mine(bytes);
  size_t at_byte = 0;
  for (const auto& h : host) {
    if (h.nbytes() > 0) std::memcpy(mine.data() + at_byte, h.data_ptr(), h.nbytes());
    at_byte += h.nbytes();
  }
  auto all = exchange(std::move(mine));
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r].size() != bytes)
      throw DistError(fmt::format("rank {} sent {} bytes to a reduction where rank {} sent {}: the ranks disagree on "
                                  "what they reduce (different configs or data?)",
                                  r, all[r].size(), s_->world.rank, bytes));
  at_byte = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& h = host[i];
    at::Tensor acc;
    for (auto& buf : all) {
      at::Tensor part = at::from_blob(buf.data() + at_byte, h.sizes(), h.options());
      if (!acc.defined())
        acc = part.clone();
      else if (op == ReduceOp::kSum)
        acc.add_(part);
      else
        acc = at::maximum(acc, part);
    }
    at_byte += h.nbytes();
    tensors[i].copy_(acc);
  }
}

void ProcessGroup::barrier(bool without_timeout) {
  const auto kept = s_->wait_timeout;
  if (without_timeout) s_->wait_timeout = std::chrono::milliseconds(0);
  try {
    (void)exchange({});
  } catch (...) {
    s_->wait_timeout = kept;
    throw;
  }
  s_->wait_timeout = kept;
}

std::string ProcessGroup::broadcast(const std::string& value) {
  std::vector<uint8_t> mine;
  if (s_->world.rank == 0) mine.assign(value.begin(), value.end());
  auto all = exchange(std::move(mine));
  return std::string(all[0].begin(), all[0].end());
}

void ProcessGroup::abort(const std::string& why) noexcept {
  s_->aborted = true;
  try {
    const int rank = s_->world.rank;
    // The first failure is the one to report (later ones are usually its consequence): set only
    // when no rank has set it, in one step, so two failing ranks cannot mix their words.
    const std::string text = fmt::format("{}\nrank {} failed: {}", rank, rank, why);
    s_->store->compareSet(s_->key(kAbortKey), std::vector<uint8_t>{}, std::vector<uint8_t>(text.begin(), text.end()));
    if (rank != 0 || !s_->rank0_hosts()) return;
    // The store lives in this process: the others must read the reason before it goes.
    std::vector<std::string> seen;
    for (int r = 1; r < s_->world.world_size; ++r) seen.push_back(s_->key(fmt::format("seen/{}", r)));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!s_->store->check(seen) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } catch (...) {
  }
}

void ProcessGroup::set_stop_check(std::function<int()> pending_stop, std::chrono::milliseconds grace) {
  s_->pending_stop = std::move(pending_stop);
  s_->stop_grace = grace;
}

void ProcessGroup::outlive_failed_host(std::chrono::milliseconds timeout) noexcept {
  if (!s_->rank0_hosts()) return;  // torchrun's agent holds the store: nothing to outlive
  const auto until = std::chrono::steady_clock::now() + timeout;
  try {
    while (std::chrono::steady_clock::now() < until) {
      s_->store->check({s_->key(kAbortKey)});  // throws once rank 0's store has gone
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } catch (...) {
  }
}

}  // namespace autotrain::dist
