#include "launcher/serve/serve_context.h"

#include <algorithm>

#include "engine/core/error.h"
#include "launcher/serve/api_error.h"

namespace lattice::serve {

void prepare_prompt(ApiRequest& r, const ServeContext& context, bool text_output) {
  const ModelInfo* model = context.model();
  if (!model) throw ApiError(503, "service_unavailable", "the model is still loading", {}, "loading");
  if (!r.model.empty() && r.model != model->name)
    throw ApiError(404, "invalid_request_error", "the model '" + r.model + "' does not exist; this server serves '" +
                   model->name + "'", "model", "model_not_found");
  const bool needs_tokenizer = text_output || r.chat || r.prompt_text || !r.stop.empty();
  if (needs_tokenizer && !model->tokenizer)
    throw invalid_field(r.chat ? "messages" : "prompt", text_output
        ? "this model has no tokenizer.json, which the HTTP API needs for its text; use the gRPC API with token ids"
        : "this model has no tokenizer.json: send prompt token ids and no stop strings");
  try {
    if (r.chat) {
      const std::string text = model->chat_template->render(r.messages, r.add_generation_prompt, r.template_vars);
      r.prompt_ids = model->tokenizer->encode(text, false);
    } else if (r.prompt_text) {
      r.prompt_ids = model->tokenizer->encode(*r.prompt_text, true);
    }
  } catch (const ChatTemplateError& e) {
    throw invalid_field("messages", std::string("chat template: ") + e.what());
  } catch (const Error& e) {
    throw invalid_field(r.chat ? "messages" : "prompt", e.what());
  }
  check_against_model(r, model->limits);
  const int64_t room = model->limits.max_positions - static_cast<int64_t>(r.prompt_ids.size());
  r.params.max_tokens = static_cast<int32_t>(std::min<int64_t>(r.params.max_tokens, room));
}

}  // namespace lattice::serve
