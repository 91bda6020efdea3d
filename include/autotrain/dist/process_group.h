// The collectives a data-parallel run needs, between the processes of one world (world.h):
// tensors summed across ranks (the LoRA gradients, the step's loss), agreement on flags (a
// signal that reached one rank stops them all at the same step), barriers, and rank 0's word.
//
// Rendezvous and transport are c10d's TCPStore (LibTorch's own, hosted by rank 0 at
// MASTER_ADDR:MASTER_PORT): the wheel's Gloo and NCCL process groups cannot be built against
// (their headers are not shipped), and the payload of LoRA training is small (a few MB of
// adapter gradients per optimizer step). Every rank adds the ranks' tensors in rank order, so
// the results are the same bits on every rank and the replicas never drift apart.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "autotrain/dist/world.h"

namespace autotrain::dist {

// Another rank failed (its reason is in the message), a rank did not answer in time, or the
// connection to rank 0 was lost.
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Another rank said it failed (ProcessGroup::abort): the message is its reason.
class PeerFailure : public DistError {
 public:
  PeerFailure(const std::string& what, int failed_rank) : DistError(what), failed_rank_(failed_rank) {}
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

// This process was asked to stop (a signal) and the other ranks did not come within the grace
// period after it: one of them is gone, and nothing can be finished together.
class StoppedWaiting : public DistError {
 public:
  StoppedWaiting(const std::string& what, int signal) : DistError(what), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

enum class ReduceOp { kSum, kMax };

class ProcessGroup {
 public:
  // Rank 0 opens the store on MASTER_PORT; the others connect to MASTER_ADDR:MASTER_PORT. Returns
  // once every rank is there, or throws DistError after `connect_timeout`. `wait_timeout` bounds
  // each later wait for the other ranks (a rank stuck or gone).
  static std::unique_ptr<ProcessGroup> connect(const WorldInfo& world, std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds wait_timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;

  // In place: each tensor becomes the sum (or maximum) of that tensor over the ranks, the same
  // bits on every rank. Every rank passes tensors of the same shapes and dtypes, in the same order.
  void all_reduce(std::vector<at::Tensor>& tensors, ReduceOp op = ReduceOp::kSum);
  // Returns when every rank has called it; `without_timeout`: however long that takes (rank 0
  // building a token cache of any size).
  void barrier(bool without_timeout = false);
  // Rank 0's `value` on every rank (the others' `value` is ignored).
  std::string broadcast(const std::string& value);
  // Tells the other ranks this one is failing and why: their waits throw PeerFailure with it.
  // Never throws. Rank 0 (the store's host) lingers until they have read it (2 s at most).
  void abort(const std::string& why) noexcept;
  // `pending_stop` says whether this process was asked to stop (the signal number, or 0). A wait
  // for the other ranks that goes on `grace` after such a request throws StoppedWaiting: when all
  // ranks got the signal they meet well within it (they are at most a step apart); a rank that
  // never comes is gone.
  void set_stop_check(std::function<int()> pending_stop, std::chrono::milliseconds grace);
  // After a PeerFailure of rank 0: returns once rank 0 has ended (its store is gone), or after
  // `timeout`. So that rank 0, the failure's cause, ends first, and a launcher that reports the
  // first process to end reports it.
  void outlive_failed_host(std::chrono::milliseconds timeout) noexcept;

 private:
  struct State;
  explicit ProcessGroup(std::unique_ptr<State> state);
  // One round: `to_each` is this rank's value for every rank (one entry: the same for all); returns
  // what every rank sent this one, in rank order (its own included).
  std::vector<std::vector<uint8_t>> exchange(const std::vector<std::vector<uint8_t>>& to_each);
  std::unique_ptr<State> s_;
};

}  // namespace autotrain::dist
