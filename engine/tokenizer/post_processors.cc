#include "engine/tokenizer/post_processors.h"

namespace lattice::tokenizer {

void TemplatePostProcessor::add_special_tokens(std::vector<int32_t>& ids) const {
  std::vector<int32_t> out;
  out.reserve(ids.size() + items_.size());
  for (const Item& item : items_) {
    if (item.is_sequence) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
  }
  ids = std::move(out);
}

}  // namespace lattice::tokenizer
