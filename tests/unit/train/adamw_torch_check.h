// One check shared by the CPU and the CUDA optimizer tests: five steps of clip_grad_norm +
// AdamW on the parameters and gradients of tests/reference/train/optim_reference.py, on a given
// device, against the values torch.optim.AdamW produced there; then the state round trip.
#pragma once

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "autotrain/safetensors/file.h"
#include "autotrain/safetensors/torch.h"
#include "autotrain/train/adamw.h"
#include "support/reference_run.h"

namespace autotrain::train {

inline void expect_adamw_matches_torch(const testing::ReferenceRun& oracle, const at::Device& device, bool fused) {
  auto file = safetensors::SafetensorsFile::open(oracle.dir() / "adamw.safetensors");
  auto get = [&](const std::string& name) { return safetensors::tensor_view(file, file.tensor(name)).clone().to(device); };
  auto norms = nlohmann::json::parse(testing::read_file(oracle.dir() / "adamw.json"))["norms"];
  std::vector<at::Tensor> params = {get("init.0").requires_grad_(true), get("init.1").requires_grad_(true)};
  AdamWOptions options;
  options.fused = fused;
  AdamW opt(params, {true, true}, options);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < 2; ++i) params[i].mutable_grad() = get(fmt::format("grad.{}.{}", step, i));
    const double norm = clip_grad_norm(params, 0.5);
    EXPECT_NEAR(norm, norms[static_cast<size_t>(step)].get<double>(), 1e-5 * norm) << "step " << step;
    opt.step(1e-2 * (step + 1), 0.1);
  }
  auto host = [](const at::Tensor& t) { return t.detach().to(at::kCPU); };
  auto states = opt.state_tensors();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(params[i].device(), device);
    EXPECT_TRUE(at::allclose(host(params[i]), get(fmt::format("final.{}", i)).cpu(), 0, 1e-6)) << "param " << i;
    EXPECT_TRUE(at::allclose(host(states[2 * i].second), get(fmt::format("exp_avg.{}", i)).cpu(), 0, 1e-6)) << i;
    EXPECT_TRUE(at::allclose(host(states[2 * i + 1].second), get(fmt::format("exp_avg_sq.{}", i)).cpu(), 0, 1e-6)) << i;
  }
  // The state restores exactly: one more step from a copy equals one more step of the original.
  std::vector<at::Tensor> copy = {params[0].detach().clone().requires_grad_(true),
                                  params[1].detach().clone().requires_grad_(true)};
  AdamW restored(copy, {true, true}, options);
  restored.set_state(opt.steps(), opt.state_tensors());
  for (size_t i = 0; i < 2; ++i) {
    at::Tensor g = at::ones_like(params[i]);
    params[i].mutable_grad() = g;
    copy[i].mutable_grad() = g.clone();
  }
  opt.step(1e-3, 0.1);
  restored.step(1e-3, 0.1);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(at::equal(host(params[i]), host(copy[i])));
}

}  // namespace autotrain::train
