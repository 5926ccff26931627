// Fuzz target: the Jinja chat template renderer. The input is a template source, optionally followed by a NUL
// byte and a JSON object {"messages": [...], "extra": {...}}; without one, a fixed conversation with a system
// prompt, tool calls and a tool reply is rendered. Parsing and rendering either succeed or throw
// ChatTemplateError.
#include <cstdint>
#include <string>
#include <string_view>

#include "launcher/serve/chat_template.h"
#include "tests/fuzz/fuzz_contract.h"

using lattice::serve::ChatTemplate;
using lattice::serve::ChatTemplateError;
using Json = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Json conversation = Json::parse(R"([
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "What is 2+2? Use the tool."},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "c1",
        "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
      {"role": "tool", "content": "4", "tool_call_id": "c1"},
      {"role": "assistant", "content": "4"},
      {"role": "user", "content": "Thanks"}])");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  Json messages = conversation, extra = Json::object();
  if (nul != std::string_view::npos) {
    const Json vars = Json::parse(input.substr(nul + 1), nullptr, /*allow_exceptions=*/false);
    if (vars.is_object() && vars.contains("messages") && vars["messages"].is_array()) messages = vars["messages"];
    if (vars.is_object() && vars.contains("extra") && vars["extra"].is_object()) extra = vars["extra"];
  }
  lattice::fuzz::expect_only<ChatTemplateError>([&] {
    const ChatTemplate t = ChatTemplate::from_source(std::string(input.substr(0, nul)), "<s>", "</s>");
    t.render(messages, true, extra);
  });
  return 0;
}
