// Collectives over c10d's TCPStore (see process_group.h for why not Gloo/NCCL).
//
// One round (`exchange`) per collective (two for all_reduce): rank r writes its bytes under
// "x/<round>/<r>" (or one value per destination, "x/<round>/<r>><to>") and reads the ones for it
// once all are there. A key is deleted by its writer two rounds later: by then every rank has
// read it (in every round each rank writes a key for every other, and writes round k+1's only
// after reading all of round k's).
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
  std::vector<std::vector<std::string>> written;  // per round (index round-1): the keys this rank wrote
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

std::vector<std::vector<uint8_t>> ProcessGroup::exchange(const std::vector<std::vector<uint8_t>>& to_each) {
  const int64_t round = ++s_->round;
  s_->written.emplace_back();  // this round's keys, whatever happens below (deleted at round + 2)
  const int rank = s_->world.rank, size = s_->world.world_size;
  const bool per_destination = to_each.size() > 1;
  // A value goes under a head key holding its chunk count, written after its chunks "<head>/<i>":
  // "x/<round>/<from>" for a value to all, "x/<round>/<from>><to>" for one value per destination,
  // whose "x/<round>/<from>" then says "per destination" (written last). Every rank waits for the
  // others' "x/<round>/<from>", so ranks in different kinds of collective find out rather than
  // wait for keys that never come. The writer deletes its keys two rounds later.
  auto head_of = [&](int from) { return s_->key(fmt::format("x/{}/{}", round, from)); };
  auto name = [&](int from, int to) {
    return per_destination ? s_->key(fmt::format("x/{}/{}>{}", round, from, to)) : head_of(from);
  };
  static const std::string kPerDestination = "per destination";
  std::vector<std::string> others;
  for (int r = 0; r < size; ++r)
    if (r != rank) others.push_back(head_of(r));
  const std::string abort_key = s_->key(kAbortKey);
  std::vector<std::vector<uint8_t>> all(static_cast<size_t>(size));
  try {
    std::vector<std::string>& written = s_->written.back();
    auto put = [&](const std::string& head, const std::vector<uint8_t>& value) {
      const auto chunks = static_cast<int64_t>((value.size() + kChunkBytes - 1) / kChunkBytes);
      for (int64_t i = 0; i < chunks; ++i) {
        const size_t from = static_cast<size_t>(i) * kChunkBytes, to = std::min(value.size(), from + kChunkBytes);
        written.push_back(fmt::format("{}/{}", head, i));
        s_->store->set(written.back(), std::vector<uint8_t>(value.begin() + static_cast<ptrdiff_t>(from),
                                                            value.begin() + static_cast<ptrdiff_t>(to)));
      }
      const std::string count = std::to_string(chunks);
      s_->store->set(head, std::vector<uint8_t>(count.begin(), count.end()));
      written.push_back(head);
    };
    if (per_destination) {
      for (int r = 0; r < size; ++r)
        if (r != rank) put(name(rank, r), to_each[static_cast<size_t>(r)]);
      s_->store->set(head_of(rank), std::vector<uint8_t>(kPerDestination.begin(), kPerDestination.end()));
      written.push_back(head_of(rank));
    } else if (size > 1) {
      put(name(rank, -1), to_each[0]);
    }
    if (round > 2) {
      for (const auto& key : s_->written[static_cast<size_t>(round - 3)]) s_->store->deleteKey(key);
      s_->written[static_cast<size_t>(round - 3)].clear();
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
        all[static_cast<size_t>(r)] = to_each[per_destination ? static_cast<size_t>(r) : 0];
        continue;
      }
      const auto kind = s_->store->get(head_of(r));
      if ((std::string(kind.begin(), kind.end()) == kPerDestination) != per_destination)
        throw DistError(fmt::format("rank {} is in another kind of collective than rank {} (round {}): the ranks' runs "
                                    "went different ways",
                                    r, rank, round));
      const std::string head = name(r, rank);
      const auto n_bytes = per_destination ? s_->store->get(head) : kind;
      const int64_t n = std::atoll(std::string(n_bytes.begin(), n_bytes.end()).c_str());
      if (n == 0) continue;
      std::vector<std::string> keys;
      for (int64_t i = 0; i < n; ++i) keys.push_back(fmt::format("{}/{}", head, i));
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

// A reduce-scatter and an all-gather, through the store: each rank sums one slice of every
// tensor (the ranks' values of it, in rank order), then every rank takes every rank's summed
// slices. Each rank sends and receives about twice its payload, not the world's times it, and
// every element is summed in rank order, the same bits on every rank.
void ProcessGroup::all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op) {
  const int size = s_->world.world_size, rank = s_->world.rank;
  // Flat host copies. Tensors on a GPU travel as one buffer per device and dtype (one copy each
  // way rather than one per tensor: a LoRA adapter has hundreds), `host` holding views into it.
  std::vector<at::Tensor> host(tensors.size());
  struct OffCpu {
    at::Device device;
    at::ScalarType dtype;
    std::vector<size_t> members;
    at::Tensor flat;  // on the host
  };
  std::vector<OffCpu> off_cpu;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    if (t.device().is_cpu()) {
      host[i] = t.detach().contiguous().reshape({-1});
      continue;
    }
    auto same = std::find_if(off_cpu.begin(), off_cpu.end(),
                             [&](const OffCpu& g) { return g.device == t.device() && g.dtype == t.scalar_type(); });
    if (same == off_cpu.end()) same = off_cpu.insert(off_cpu.end(), OffCpu{t.device(), t.scalar_type(), {}, {}});
    same->members.push_back(i);
  }
  for (auto& g : off_cpu) {
    std::vector<at::Tensor> parts;
    for (size_t i : g.members) parts.push_back(tensors[i].detach().reshape({-1}));
    g.flat = at::cat(parts).to(at::kCPU);
    int64_t at_element = 0;
    for (size_t i : g.members) {
      const int64_t n = tensors[i].numel();
      host[i] = g.flat.slice(0, at_element, at_element + n);
      at_element += n;
    }
  }
  // Slice r of tensor i: elements [n_i * r / W, n_i * (r + 1) / W).
  auto slice = [&](size_t i, int r) {
    const int64_t n = host[i].numel();
    return host[i].slice(0, n * r / size, n * (r + 1) / size);
  };
  auto bytes_of = [&](int r) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < host.size(); ++i) {
      const at::Tensor part = slice(i, r);
      const auto* p = static_cast<const uint8_t*>(part.data_ptr());
      out.insert(out.end(), p, p + part.nbytes());
    }
    return out;
  };
  auto check = [&](const std::vector<uint8_t>& got, int from, int r, const char* what) {
    size_t expected = 0;
    for (size_t i = 0; i < host.size(); ++i) expected += slice(i, r).nbytes();
    if (got.size() != expected)
      throw DistError(fmt::format("rank {} sent {} bytes of {} where rank {} expected {}: the ranks disagree on what they "
                                  "reduce (different configs or data?)",
                                  from, got.size(), what, rank, expected));
  };
  // What is reduced (each tensor's size and element size), ahead of every slice: ranks that
  // disagree all find out in the first round, none waits for a second that will not come.
  uint64_t shape = 1469598103934665603ull;
  for (const auto& h : host)
    for (uint64_t v : {static_cast<uint64_t>(h.numel()), static_cast<uint64_t>(h.scalar_type()),
                       static_cast<uint64_t>(op)})
      shape = (shape ^ v) * 1099511628211ull;
  // 1. Every rank's values of my slice; summed in rank order.
  std::vector<std::vector<uint8_t>> to_each(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) {
    auto& v = to_each[static_cast<size_t>(r)];
    v.resize(sizeof shape);
    std::memcpy(v.data(), &shape, sizeof shape);
    const auto body = bytes_of(r);
    v.insert(v.end(), body.begin(), body.end());
  }
  if (size == 1) to_each.resize(1);
  auto mine = exchange(to_each);
  for (int q = 0; q < size; ++q) {
    auto& got = mine[static_cast<size_t>(q)];
    uint64_t theirs = 0;
    if (got.size() >= sizeof theirs) std::memcpy(&theirs, got.data(), sizeof theirs);
    if (got.size() < sizeof theirs || theirs != shape)
      throw DistError(fmt::format("rank {} reduces other tensors than rank {}: the ranks disagree on what they reduce "
                                  "(different configs or data?)",
                                  q, rank));
    got.erase(got.begin(), got.begin() + sizeof shape);
    check(got, q, rank, "a slice");
  }
  std::vector<uint8_t> reduced;
  size_t at_byte = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    const at::Tensor own = slice(i, rank);
    at::Tensor acc;
    for (const auto& buf : mine) {
      // Copied out rather than viewed: slices of mixed dtypes sit back to back, unaligned.
      at::Tensor part = at::empty(own.sizes(), own.options());
      if (own.nbytes() > 0) std::memcpy(part.data_ptr(), buf.data() + at_byte, own.nbytes());
      if (!acc.defined())
        acc = part.clone();
      else if (op == ReduceOp::kSum)
        acc.add_(part);
      else
        acc = at::maximum(acc, part);
    }
    at_byte += own.nbytes();
    const auto* p = static_cast<const uint8_t*>(acc.data_ptr());
    reduced.insert(reduced.end(), p, p + acc.nbytes());
  }
  // 2. Every rank's summed slices, into the tensors.
  const auto all = exchange({reduced});
  for (int r = 0; r < size; ++r) {
    const auto& buf = all[static_cast<size_t>(r)];
    check(buf, r, r, "summed slices");
    at_byte = 0;
    for (size_t i = 0; i < host.size(); ++i) {
      at::Tensor part = slice(i, r);
      if (part.nbytes() > 0) std::memcpy(part.data_ptr(), buf.data() + at_byte, part.nbytes());
      at_byte += part.nbytes();
    }
  }
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].device().is_cpu()) tensors[i].copy_(host[i].view(tensors[i].sizes()));
  for (auto& g : off_cpu) {
    const at::Tensor flat = g.flat.to(g.device);
    int64_t at_element = 0;
    for (size_t i : g.members) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat.slice(0, at_element, at_element + n).view(tensors[i].sizes()));
      at_element += n;
    }
  }
}

void ProcessGroup::barrier(bool without_timeout) {
  const auto kept = s_->wait_timeout;
  if (without_timeout) s_->wait_timeout = std::chrono::milliseconds(0);
  try {
    (void)exchange({std::vector<uint8_t>()});
  } catch (...) {
    s_->wait_timeout = kept;
    throw;
  }
  s_->wait_timeout = kept;
}

std::string ProcessGroup::broadcast(const std::string& value) {
  std::vector<uint8_t> mine;
  if (s_->world.rank == 0) mine.assign(value.begin(), value.end());
  const auto all = exchange({mine});
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
