#include "support/reference_run.h"

namespace autotrain::testing {

ReferenceRun::ReferenceRun(std::string script, std::vector<std::string> args)
    : script_(std::move(script)), python_(env_var("AUTOTRAIN_PYTHON")) {
  if (!python_) return;
  args.push_back(dir_.path().string());
  auto r = run(args);
  ok_ = r.exit_code == 0;
  log_ = r.out + r.err;
}

CommandResult ReferenceRun::run(const std::vector<std::string>& args) const {
  const auto script = std::filesystem::path(AUTOTRAIN_TEST_SOURCE_DIR) / "reference" / script_;
  std::vector<std::string> argv = {python_.value_or("python3"), script.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  // A clean environment: no session variables, no hub access, eager PyTorch (torch.compile in
  // the reference code only costs time here).
  return run_command(argv, {"PATH=/usr/bin:/bin", "HOME=" + dir_.path().string(), "HF_HUB_OFFLINE=1",
                            "TOKENIZERS_PARALLELISM=false", "TORCHDYNAMO_DISABLE=1"});
}

}  // namespace autotrain::testing
