#include "launcher/serve/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "launcher/serve/jinja/template.h"

namespace lattice::serve {

const char* ChatTemplate::chatml_source() {
  return "{%- for message in messages %}"
         "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
         "{%- endfor %}"
         "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}

namespace {

// bos_token / eos_token may be a string or an AddedToken object {"content": ...}.
std::string token_text(const nlohmann::ordered_json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, std::string bos_token, std::string eos_token) {
  ChatTemplate t;
  t.template_ = std::make_shared<const jinja::Template>(source);
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  return t;
}

ChatTemplate ChatTemplate::from_dir(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    try {
      config = nlohmann::ordered_json::parse(text.str());
    } catch (const nlohmann::ordered_json::exception& e) {
      throw ChatTemplateError(path.string() + " is not valid JSON: " + e.what());
    }
  }
  std::string source;
  auto it = config.find("chat_template");
  if (it != config.end() && it->is_string()) {
    source = it->get<std::string>();
  } else if (it != config.end() && it->is_array()) {  // [{"name": "default", "template": ...}, ...]
    for (const nlohmann::ordered_json& named : *it)
      if (named.is_object() && named.contains("name") && named["name"] == "default" && named.contains("template") &&
          named["template"].is_string())
        source = named["template"].get<std::string>();
  }
  const bool is_default = source.empty();
  ChatTemplate t;
  try {
    t = from_source(is_default ? chatml_source() : source, token_text(config, "bos_token"), token_text(config, "eos_token"));
  } catch (const ChatTemplateError& e) {
    throw ChatTemplateError(path.string() + ": chat_template: " + e.what());
  }
  t.is_default_ = is_default;
  return t;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) const {
  jinja::Json vars = jinja::Json::object();
  for (auto it = extra.begin(); it != extra.end(); ++it) vars[it.key()] = *it;
  vars["messages"] = messages;
  vars["add_generation_prompt"] = add_generation_prompt;
  vars["bos_token"] = bos_token_;
  vars["eos_token"] = eos_token_;
  return template_->render(vars);
}

}  // namespace lattice::serve
