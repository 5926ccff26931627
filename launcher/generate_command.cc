// lattice generate: runs prompts through the continuous-batching scheduler and prints the tokens.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "engine/scheduler/scheduler.h"
#include "launcher/commands.h"
#include "launcher/engine_setup.h"
#include "launcher/requests_file.h"

namespace lattice::launcher {

namespace {

const char* kHelp = R"(usage: lattice generate --model DIR (--prompt-ids 1,2,3 | --requests FILE.jsonl) [flags]
  --max-tokens N          tokens to generate per request (default 16)
  --temperature T         0 = greedy (default 1.0)
  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --presence-penalty P  --frequency-penalty F
  --seed S                per-request seed (default: derived from the request's position)
  --stop-ids 2,3          extra stop token ids; --ignore-eos keeps going past EOS
  --logprobs K            report the top-K log-probabilities of each generated token
  --json                  one JSON object per request on stdout
  --kv-cache-mb MB  --block-size N  --max-tokens-per-step N  --max-seqs N
)";

nlohmann::ordered_json to_json(const GenerateRequest& r, const RequestOutput& out) {
  nlohmann::ordered_json tokens = nlohmann::ordered_json::array(), logprobs = nlohmann::ordered_json::array();
  for (const SampledToken& t : out.tokens) {
    tokens.push_back(t.token);
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (const TokenLogprob& lp : t.top) top.push_back({{"token", lp.token}, {"logprob", lp.logprob}});
    logprobs.push_back(std::move(top));
  }
  nlohmann::ordered_json j = {{"id", r.name},
                      {"prompt_tokens", out.prompt_tokens},
                      {"tokens", tokens},
                      {"finish_reason", finish_reason_name(out.finish)}};
  j["logprobs"] = r.request.params.logprobs > 0 ? logprobs : nlohmann::ordered_json(nullptr);
  return j;
}

}  // namespace

int generate_command(const Args& argv) {
  const CliArgs args(argv, {"json", "ignore-eos", "help"});
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const bool json_out = args.has("json");
  const SamplingParams defaults = sampling_defaults(args);
  std::vector<GenerateRequest> requests;
  if (auto ids = args.maybe("prompt-ids")) {
    LATTICE_CHECK(!args.has("requests"), "give either --prompt-ids or --requests, not both");
    requests.push_back({"0", {0, parse_int_list(*ids, "--prompt-ids"), defaults}});
  } else {
    LATTICE_CHECK(args.has("requests"), "give --prompt-ids or --requests (see lattice generate --help)");
    requests = read_requests_file(args.require("requests"), defaults);
  }
  SchedulerOptions options;
  options.max_tokens_per_step = args.get_int("max-tokens-per-step", options.max_tokens_per_step);
  options.max_seqs = args.get_int("max-seqs", options.max_seqs);
  const EngineOptions engine_flags = engine_options(args);
  args.reject_unknown();
  LoadedEngine engine = load_engine(engine_flags, false);
  options.eos_token_ids = engine.model->config().eos_token_ids;

  Scheduler scheduler(engine.model->lm_shape(), engine.cache->num_blocks(),
                      static_cast<int32_t>(engine.cache->shape().block_size), options);
  for (const GenerateRequest& r : requests) scheduler.add(r.request);
  LocalExecutor executor(*engine.model, *engine.cache);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<RequestOutput> outputs = scheduler.run(executor);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  for (size_t i = 0; i < outputs.size(); ++i) {
    if (json_out) {
      std::printf("%s\n", to_json(requests[i], outputs[i]).dump().c_str());
      continue;
    }
    std::printf("[%s] prompt_tokens=%lld finish=%s tokens:", requests[i].name.c_str(),
                static_cast<long long>(outputs[i].prompt_tokens), finish_reason_name(outputs[i].finish));
    for (const SampledToken& t : outputs[i].tokens) std::printf(" %d", t.token);
    std::printf("\n");
  }
  const SchedulerStats& s = scheduler.stats();
  std::fprintf(stderr, "%zu requests, %lld prompt + %lld generated tokens in %.3f s: %.1f tokens/s (%lld steps, %lld preemptions)\n",
               outputs.size(), static_cast<long long>(s.prompt_tokens), static_cast<long long>(s.generated_tokens),
               seconds, (s.prompt_tokens + s.generated_tokens) / seconds, static_cast<long long>(s.steps),
               static_cast<long long>(s.preemptions));
  return 0;
}

}  // namespace lattice::launcher
