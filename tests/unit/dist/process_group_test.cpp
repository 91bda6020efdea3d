// The collectives between two ranks in one process (a thread each), over a real TCPStore.
#include "autotrain/dist/process_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <functional>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace autotrain::dist {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs body(rank, group) on `ranks` ranks at once; an exception on any is recorded as a failure.
void on_ranks(int ranks, const std::function<void(int, ProcessGroup&)>& body, std::chrono::milliseconds wait = 20s) {
  const int port = unused_port();
  auto rank_main = [&](int rank) {
    WorldInfo w;
    w.rank = rank;
    w.world_size = ranks;
    w.master_port = port;
    try {
      auto group = ProcessGroup::connect(w, 20s, wait);
      body(rank, *group);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank " << rank << ": " << e.what();
    }
  };
  std::vector<std::thread> others;
  for (int r = 1; r < ranks; ++r) others.emplace_back(rank_main, r);
  rank_main(0);
  for (auto& t : others) t.join();
}

void on_two_ranks(const std::function<void(int, ProcessGroup&)>& body, std::chrono::milliseconds wait = 20s) {
  on_ranks(2, body, wait);
}

TEST(ProcessGroup, SumsAndMaximaAreTheSameOnEveryRank) {
  at::Tensor results[2][3];
  on_two_ranks([&](int rank, ProcessGroup& g) {
    EXPECT_EQ(g.rank(), rank);
    EXPECT_EQ(g.size(), 2);
    // fp32 values whose sum depends on the order of additions: both ranks must get the same bits.
    std::vector<at::Tensor> t = {at::tensor({1.0f + rank, 1e8f * (rank == 0 ? 1.f : -1.f), 0.1f * static_cast<float>(rank + 1)}),
                                 at::tensor({int64_t{10} * (rank + 1)}, at::kLong), at::empty({0})};
    g.all_reduce(t);
    std::vector<at::Tensor> m = {at::tensor({static_cast<int64_t>(rank == 0 ? 7 : 3), int64_t{rank}})};
    g.all_reduce(m, ReduceOp::kMax);
    results[rank][0] = t[0];
    results[rank][1] = t[1];
    results[rank][2] = m[0];
  });
  EXPECT_TRUE(at::equal(results[0][0], results[1][0]));
  EXPECT_FLOAT_EQ(results[0][0][0].item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(results[0][0][1].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(results[0][0][2].item<float>(), 0.1f + 0.2f);
  EXPECT_EQ(results[1][1].item<int64_t>(), 30);
  EXPECT_TRUE(at::equal(results[1][2], at::tensor({int64_t{7}, int64_t{1}})));
}

// Slices of uneven sizes (7 elements over 3 ranks; 1; none; a scalar), each element summed in
// rank order: the sum one process would make, on every rank.
TEST(ProcessGroup, ThreeRanksWithUnevenSlices) {
  std::vector<at::Tensor> inputs[3], results[3];
  for (int r = 0; r < 3; ++r)
    inputs[r] = {at::randn({7}, at::kFloat) * 1e3, at::randn({1, 1}, at::kFloat), at::empty({0, 4}),
                 at::randn({}, at::kDouble)};
  on_ranks(3, [&](int rank, ProcessGroup& g) {
    std::vector<at::Tensor> t;
    for (const auto& x : inputs[rank]) t.push_back(x.clone());
    g.all_reduce(t);
    results[rank] = t;
  });
  for (size_t i = 0; i < inputs[0].size(); ++i) {
    at::Tensor expected = inputs[0][i].clone();
    expected.add_(inputs[1][i]);
    expected.add_(inputs[2][i]);
    for (int r = 0; r < 3; ++r) {
      ASSERT_TRUE(results[r][i].defined());
      EXPECT_TRUE(at::equal(results[r][i], expected)) << "tensor " << i << " on rank " << r;
      EXPECT_EQ(results[r][i].sizes(), inputs[0][i].sizes());
    }
  }
}

TEST(ProcessGroup, BroadcastAndManyRounds) {
  std::string got[2];
  on_two_ranks([&](int rank, ProcessGroup& g) {
    got[rank] = g.broadcast(rank == 0 ? "checkpoint-7" : "ignored");
    for (int i = 0; i < 50; ++i) {
      std::vector<at::Tensor> t = {at::full({4}, static_cast<double>(i))};
      g.all_reduce(t);
      EXPECT_EQ(t[0][3].item<double>(), 2.0 * i);
      g.barrier();
    }
  });
  EXPECT_EQ(got[0], "checkpoint-7");
  EXPECT_EQ(got[1], "checkpoint-7");
}

// The store's server refuses values over 8 MiB: a Falcon-7B adapter's gradients (18 MiB at r=16
// on query_key_value, ~130 MiB for all-linear) must go through all the same.
TEST(ProcessGroup, PayloadsLargerThanTheStoreTakesInOneValue) {
  bool same[2] = {false, false};
  on_two_ranks([&](int rank, ProcessGroup& g) {
    for (int round = 0; round < 3; ++round) {  // and keys of earlier rounds are cleaned up in chunks
      std::vector<at::Tensor> t = {at::arange(5'000'000, at::kFloat) * static_cast<float>(rank + 1),
                                   at::full({3}, static_cast<double>(rank))};
      g.all_reduce(t);
      same[rank] = at::equal(t[0], at::arange(5'000'000, at::kFloat) * 3.0f) && t[1][2].item<double>() == 1.0;
    }
  });
  EXPECT_TRUE(same[0]);
  EXPECT_TRUE(same[1]);
}

TEST(ProcessGroup, RanksThatDisagreeOnShapesAreTold) {
  std::string errors[2];
  on_two_ranks([&](int rank, ProcessGroup& g) {
    std::vector<at::Tensor> t = {at::zeros({rank == 0 ? 2 : 3})};
    try {
      g.all_reduce(t);
    } catch (const DistError& e) {
      errors[rank] = e.what();
    }
  });
  EXPECT_THAT(errors[0], HasSubstr("the ranks disagree"));
  EXPECT_THAT(errors[1], HasSubstr("the ranks disagree"));
}

// Ranks whose runs went different ways (one in a barrier, one summing) find out at once.
TEST(ProcessGroup, RanksInDifferentCollectivesAreTold) {
  std::string errors[2];
  on_two_ranks([&](int rank, ProcessGroup& g) {
    try {
      if (rank == 0) {
        g.barrier();
      } else {
        std::vector<at::Tensor> t = {at::zeros({4})};
        g.all_reduce(t);
      }
    } catch (const DistError& e) {
      errors[rank] = e.what();
    }
  });
  EXPECT_THAT(errors[0], HasSubstr("is in another kind of collective"));
  EXPECT_THAT(errors[1], HasSubstr("is in another kind of collective"));
}

TEST(ProcessGroup, AFailingRankStopsTheOthersWaiting) {
  for (int failing : {1, 0}) {
    std::string error;
    int reported = -1;
    const auto start = std::chrono::steady_clock::now();
    on_two_ranks([&](int rank, ProcessGroup& g) {
      if (rank == failing) {
        g.abort("out of memory at step 3");
        return;
      }
      try {
        g.barrier();
      } catch (const PeerFailure& e) {
        error = e.what();
        reported = e.failed_rank();
      }
    });
    EXPECT_THAT(error, HasSubstr("rank " + std::to_string(failing) + " failed: out of memory at step 3"));
    EXPECT_EQ(reported, failing);
    // Nobody waits for the wait timeout (20 s) nor for the leaving ranks (30 s).
    EXPECT_LT(std::chrono::steady_clock::now() - start, 15s) << "failing rank " << failing;
  }
}

// Asked to stop, a rank waits for the others a grace period at most: they got the signal too,
// or one of them is gone.
TEST(ProcessGroup, AStopRequestEndsAWaitForARankThatIsGone) {
  std::string error;
  int signal = 0;
  std::chrono::steady_clock::duration waited{};
  on_two_ranks([&](int rank, ProcessGroup& g) {
    if (rank == 1) {
      g.barrier();  // the first round together; then rank 1 is "gone"
      std::this_thread::sleep_for(3s);
      g.barrier();
      return;
    }
    g.barrier();
    g.set_stop_check([] { return SIGTERM; }, 1s);
    const auto start = std::chrono::steady_clock::now();
    try {
      g.barrier();
    } catch (const StoppedWaiting& e) {
      error = e.what();
      signal = e.signal();
    }
    waited = std::chrono::steady_clock::now() - start;
    g.set_stop_check(nullptr, 0s);
    std::this_thread::sleep_for(4s);  // rank 1's last barrier finds the store still there
  });
  EXPECT_THAT(error, HasSubstr("asked to stop (signal 15), and the other ranks did not come within 1 s"));
  EXPECT_EQ(signal, SIGTERM);
  EXPECT_LT(waited, 2900ms);
}

TEST(ProcessGroup, ARankThatNeverComesTimesOut) {
  WorldInfo w;
  w.rank = 1;
  w.world_size = 2;
  w.master_port = unused_port();  // nobody listens there
  try {
    ProcessGroup::connect(w, 1s, 1s);
    ADD_FAILURE() << "connected to nobody";
  } catch (const DistError& e) {
    EXPECT_THAT(e.what(), HasSubstr("could not reach rank 0 at 127.0.0.1:"));
  }
}

}  // namespace
}  // namespace autotrain::dist
