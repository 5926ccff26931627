// Requests for `lattice generate`: from --prompt-ids or a JSONL file, one request object per line:
//   {"id": "a", "prompt_ids": [1, 2, 3] (or "prompt": "text"), "max_tokens": 16, "temperature": 0.7, "top_k": 40, "top_p": 0.9,
//    "min_p": 0.05, "repetition_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.5,
//    "seed": 7, "stop_token_ids": [2], "ignore_eos": false, "logprobs": 5}
// Fields a line leaves out take the command-line defaults. Unknown fields are errors.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/scheduler/request.h"
#include "launcher/cli_args.h"

namespace lattice::launcher {

struct GenerateRequest {
  std::string name;  // the "id" the user gave (or its line number), echoed in the output
  Request request;   // request.prompt is empty until `text` is tokenized
  std::optional<std::string> text;  // a text prompt, tokenized with the model's tokenizer.json
};

// Sampling defaults from the command line (--max-tokens, --temperature, ...).
SamplingParams sampling_defaults(const CliArgs& args);

std::vector<GenerateRequest> read_requests_file(const std::string& path, const SamplingParams& defaults);

}  // namespace lattice::launcher
