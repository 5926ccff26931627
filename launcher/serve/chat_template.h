// Chat templates: the checkpoint's Jinja chat_template from tokenizer_config.json (rendered by the Jinja
// subset in jinja/), or a plain ChatML template when the checkpoint has none.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace lattice::serve {

namespace jinja {
class Template;
}

// A template that does not parse, fails while rendering, or calls raise_exception(...).
struct ChatTemplateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ChatTemplate {
 public:
  // The plain ChatML template used when a checkpoint has none.
  static const char* chatml_source();

  // DIR/tokenizer_config.json's chat_template (a string, or the "default" of a list of named templates),
  // with its bos_token / eos_token; ChatML when absent.
  static ChatTemplate from_dir(const std::string& model_dir);
  static ChatTemplate from_source(const std::string& source, std::string bos_token = {}, std::string eos_token = {});

  // Renders `messages` (an array of {"role", "content", ...}); `extra` adds variables (tools,
  // enable_thinking, ...). Throws ChatTemplateError.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  bool is_default() const { return is_default_; }

 private:
  std::shared_ptr<const jinja::Template> template_;
  std::string bos_token_, eos_token_;
  bool is_default_ = false;
};

}  // namespace lattice::serve
