// Post-processors (HF `post_processor` section): add special tokens around an encoded sequence
// when encode() is asked for add_special_tokens. Only single sequences are encoded.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace lattice::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void add_special_tokens(std::vector<int32_t>& ids) const = 0;
};

// ByteLevel's post-processing only trims offsets; ids pass through unchanged.
class ByteLevelPostProcessor final : public PostProcessor {
 public:
  void add_special_tokens(std::vector<int32_t>& ids) const override {}
};

// HF TemplateProcessing "single" template: fixed special-token ids around the sequence "$A".
class TemplatePostProcessor final : public PostProcessor {
 public:
  struct Item {
    bool is_sequence = false;
    std::vector<int32_t> ids;  // the special token's ids when !is_sequence
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override;

 private:
  std::vector<Item> items_;
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void add_special_tokens(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->add_special_tokens(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

}  // namespace lattice::tokenizer
