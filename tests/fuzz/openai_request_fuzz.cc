// Fuzz target: an OpenAI request body as the HTTP front end handles it: parse_body, the completion or chat
// parser (chat when the body has "messages"), the default chat template over the validated messages, and the
// check against a model's limits. Every refusal is an ApiError (or a ChatTemplateError from rendering) whose
// error body serialises; nothing else may escape.
#include <cstdint>
#include <string>

#include "launcher/serve/api_error.h"
#include "launcher/serve/chat_template.h"
#include "launcher/serve/openai_request.h"
#include "tests/fuzz/fuzz_contract.h"

using namespace lattice::serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ChatTemplate chatml = ChatTemplate::from_source(ChatTemplate::chatml_source());
  const std::string text(reinterpret_cast<const char*>(data), size);
  lattice::fuzz::expect_only<ChatTemplateError>([&] {
    try {
      const nlohmann::ordered_json body = parse_body(text);
      const bool chat = body.contains("messages");
      ApiRequest r = chat ? parse_chat_request(body) : parse_completion_request(body);
      FUZZ_ASSERT(r.chat == chat && r.n >= 1);
      if (chat) r.prompt_text = chatml.render(r.messages, r.add_generation_prompt, r.template_vars);
      if (r.prompt_text)  // stands in for the tokenizer: one id per byte
        for (unsigned char c : *r.prompt_text) r.prompt_ids.push_back(c);
      check_against_model(r, ModelLimits{512, 256, 4096, 0});
    } catch (const ApiError& e) {
      FUZZ_ASSERT(e.status >= 400 && e.status < 600);
      (void)json_text(error_body(e));  // the response writer must not throw on the message
    }
  });
  return 0;
}
