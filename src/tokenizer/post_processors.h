// Post-processors of `tokenizer.json`: what `add_special_tokens=True` adds around the ids of a
// single sequence (pairs are not used by training data).
#pragma once

#include <memory>
#include <vector>

#include "autotrain/tokenizer/tokenizer.h"

namespace autotrain::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<TokenId>& ids) const = 0;
};

// `TemplateProcessing` (single), `RobertaProcessing` and `BertProcessing` all reduce to
// "these ids, then the sequence, then those ids".
class TemplatePostProcessor final : public PostProcessor {
 public:
  TemplatePostProcessor(std::vector<TokenId> before, std::vector<TokenId> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<TokenId>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<TokenId> before_, after_;
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<TokenId>& ids) const override {
    for (const auto& s : steps_) s->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

}  // namespace autotrain::tokenizer
