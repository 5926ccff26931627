// lattice generate: runs prompts through the continuous-batching scheduler and prints the tokens.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/scheduler/replica_coordinator.h"
#include "engine/tokenizer/tokenizer.h"
#include "launcher/commands.h"
#include "launcher/engine_setup.h"
#include "launcher/requests_file.h"
#include "parallel/replica_executors.h"

namespace lattice::launcher {

namespace {

const char* kHelp = R"(usage: lattice generate --model DIR (--prompt "text" | --prompt-ids 1,2,3 | --requests FILE.jsonl) [flags]
  Text prompts and text output use DIR/tokenizer.json; one text prompt streams its text as it is generated.
  A request whose logits cannot be sampled (NaN or +inf) ends alone with finish_reason "error" and its message;
  the others complete, and the exit status is 1.
  --max-tokens N          tokens to generate per request (default 16)
  --temperature T         0 = greedy (default 1.0)
  --top-k K  --top-p P  --min-p P
  --repetition-penalty R  --presence-penalty P  --frequency-penalty F
  --seed S                per-request seed (default: derived from the request's position)
  --stop-ids 2,3          extra stop token ids; --ignore-eos keeps going past EOS
  --logprobs K            report the top-K log-probabilities of each generated token
  --json                  one JSON object per request on stdout
  --kv-cache-mb MB (or --kv-cache-blocks N)  --block-size N  --max-tokens-per-step N  --max-seqs N
  --device cuda|cpu       default: cuda when a GPU is visible;  --dtype auto|bf16|f16|f32 (auto: the checkpoint's
                          half type on a GPU, f32 on the CPU);  --gpu-memory-utilization F (0.90);  --dummy-weights
  --tp N --pp N           split the model over mpirun's ranks (tp x pp of them); --pp-layers 10,11,11
                          under srun, without --tp/--pp/--dp: tp = tasks per node, pp = nodes (docs/slurm.md)
  --dp N                  N replicas of the tp x pp split (mpirun -np tp*pp*N); rank 0 routes the requests
  --enable-expert-parallel  (or --ep) a MoE model's experts split whole over the TP group (docs/parallelism.md)
  --no-enable-prefix-caching  compute every prompt in full (default: reuse the KV blocks of cached prefixes)
  --no-cuda-graphs (alias --enforce-eager)  on a GPU, run decode steps eagerly (default: replay CUDA graphs
                              captured at start-up per batch-size and context bucket)
  --async-scheduling          plan each pure-decode step while the previous one runs (default off:
                              --no-async-scheduling; docs/cuda.md)
)";

// Test-only fault switch: LATTICE_FAULT_INJECT="RANK:STEP" makes that worker rank throw at that step, and
// "RANK:STEP:kill" kills it there (SIGKILL, as the OOM killer or a lost node would), to prove a failing rank
// ends the whole job with its error (tests/parallel).
std::function<void(const StepPlan&)> fault_hook(int rank) {
  const char* spec = std::getenv("LATTICE_FAULT_INJECT");
  if (!spec) return {};
  int fault_rank = -1;
  unsigned long long fault_step = 0;
  char how[8] = "";
  LATTICE_CHECK(std::sscanf(spec, "%d:%llu:%7s", &fault_rank, &fault_step, how) >= 2 &&
                    (how[0] == '\0' || std::string(how) == "kill"),
                "LATTICE_FAULT_INJECT must be RANK:STEP or RANK:STEP:kill");
  if (fault_rank != rank) return {};
  const bool kill = how[0] != '\0';
  return [fault_step, kill](const StepPlan& plan) {
    if (plan.step_id < fault_step) return;
    if (kill) std::raise(SIGKILL);
    LATTICE_THROW("injected fault at step ", plan.step_id, " (LATTICE_FAULT_INJECT)");
  };
}

std::vector<int32_t> token_ids(const RequestOutput& out) {
  std::vector<int32_t> ids;
  for (const SampledToken& t : out.tokens) ids.push_back(t.token);
  return ids;
}

nlohmann::ordered_json to_json(const GenerateRequest& r, const RequestOutput& out, const Tokenizer* tokenizer) {
  nlohmann::ordered_json tokens = nlohmann::ordered_json::array(), logprobs = nlohmann::ordered_json::array();
  for (const SampledToken& t : out.tokens) {
    tokens.push_back(t.token);
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (const TokenLogprob& lp : t.top) top.push_back({{"token", lp.token}, {"logprob", lp.logprob}});
    logprobs.push_back(std::move(top));
  }
  nlohmann::ordered_json j = {{"id", r.name},
                      {"prompt_tokens", out.prompt_tokens},
                      {"cached_tokens", out.cached_tokens},
                      {"tokens", tokens},
                      {"finish_reason", finish_reason_name(out.finish)}};
  j["logprobs"] = r.request.params.logprobs > 0 ? logprobs : nlohmann::ordered_json(nullptr);
  if (out.finish == FinishReason::error) j["error"] = out.error;
  if (tokenizer) j["text"] = tokenizer->decode(token_ids(out));
  return j;
}

}  // namespace

int generate_command(const Args& argv, parallel::MpiRuntime* mpi) {
  const CliArgs args(argv, engine_switches({"json", "ignore-eos", "help"}));
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const bool json_out = args.has("json");
  const SamplingParams defaults = sampling_defaults(args);
  const std::optional<std::string> prompt_ids = args.maybe("prompt-ids"), requests_path = args.maybe("requests"),
                                   prompt_text = args.maybe("prompt");
  LATTICE_CHECK(!!prompt_ids + !!requests_path + !!prompt_text == 1,
                "give exactly one of --prompt, --prompt-ids or --requests (see lattice generate --help)");
  SchedulerOptions options;
  const EngineOptions engine_flags = engine_options(args);
  options.max_tokens_per_step = engine_flags.limits.max_tokens_per_step;
  options.max_seqs = engine_flags.limits.max_seqs;
  options.async_scheduling = engine_flags.async_scheduling;
  args.reject_unknown();
  std::vector<GenerateRequest> requests;
  if (prompt_ids)
    requests.push_back({"0", {0, parse_int_list(*prompt_ids, "--prompt-ids"), defaults}, std::nullopt});
  else if (prompt_text)
    requests.push_back({"0", {0, {}, defaults}, *prompt_text});
  else
    requests = read_requests_file(*requests_path, defaults);
  // Text in and out need the model's tokenizer; token ids alone do not.
  std::optional<Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(engine_flags.model_dir) / "tokenizer.json"))
    tokenizer = Tokenizer::from_dir(engine_flags.model_dir);
  for (GenerateRequest& r : requests) {
    if (!r.text) continue;
    LATTICE_CHECK(tokenizer, "request ", r.name, " has a text prompt but ", engine_flags.model_dir,
                  " has no tokenizer.json");
    r.request.prompt = tokenizer->encode(*r.text, true);
  }

  LoadedEngine engine = load_engine(engine_flags, mpi, false);
  const parallel::Topology& topo = engine.ctx.topo;
  std::unique_ptr<parallel::StageRunner> runner;
  if (topo.world_size > 1) runner = std::make_unique<parallel::StageRunner>(engine.ctx, *engine.runner);
  if (!topo.is_coordinator()) {
    parallel::run_worker(*runner, fault_hook(topo.rank));
    std::fprintf(stderr, "rank %d: %.3f s in communication\n", topo.rank,
                 engine.ctx.tp->seconds() + engine.ctx.control->seconds() +
                     (engine.ctx.prev ? engine.ctx.prev->seconds() : 0) + (engine.ctx.next ? engine.ctx.next->seconds() : 0));
    return 0;
  }

  options.eos_token_ids = engine.model->config().eos_token_ids;
  options.max_top_k = engine.max_top_k();
  options.prefix_caching = prefix_caching(engine_flags, engine);
  if (tokenizer && tokenizer->eos_id()) options.eos_token_ids.push_back(*tokenizer->eos_id());
  std::unique_ptr<StepExecutor> local;
  std::unique_ptr<parallel::ReplicaExecutors> replicas;
  std::vector<StepExecutor*> executors;
  if (runner) {
    replicas = std::make_unique<parallel::ReplicaExecutors>(*runner);
    executors = replicas->executors();
  } else {
    local = std::make_unique<LocalExecutor>(*engine.runner);
    executors = {local.get()};
  }
  ReplicaCoordinator coordinator(executors, engine.model->lm_shape(), engine.cache->num_blocks(),
                                 static_cast<int32_t>(engine.cache->shape().block_size), options);
  for (const GenerateRequest& r : requests) coordinator.add(r.request);
  // One text request streams its text as tokens arrive; otherwise results print when all are done.
  const bool stream = tokenizer && !json_out && requests.size() == 1;
  std::optional<IncrementalDetokenizer> detokenizer;
  if (stream) detokenizer.emplace(*tokenizer);
  auto on_event = [&](const TokenEvent& e) {
    if (!stream) return;
    if (e.token) std::fputs(detokenizer->push(e.token->token).c_str(), stdout);
    if (e.finish != FinishReason::none) std::fputs((detokenizer->flush() + "\n").c_str(), stdout);
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  const std::vector<RequestOutput> outputs = coordinator.run(on_event);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (replicas) replicas->shutdown();

  // A request the engine had to end (its logits could not be sampled) is reported with the others, and makes
  // the exit status 1.
  size_t failed = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].finish == FinishReason::error) {
      ++failed;
      std::fprintf(stderr, "error: request %s failed: %s\n", requests[i].name.c_str(), outputs[i].error.c_str());
    }
    if (json_out) {
      std::printf("%s\n", to_json(requests[i], outputs[i], tokenizer ? &*tokenizer : nullptr).dump().c_str());
      continue;
    }
    std::printf("[%s] prompt_tokens=%lld finish=%s tokens:", requests[i].name.c_str(),
                static_cast<long long>(outputs[i].prompt_tokens), finish_reason_name(outputs[i].finish));
    for (const SampledToken& t : outputs[i].tokens) std::printf(" %d", t.token);
    if (outputs[i].finish == FinishReason::error) std::printf(" error: %s", outputs[i].error.c_str());
    std::printf("\n");
    if (tokenizer && !stream) std::printf("[%s] text: %s\n", requests[i].name.c_str(), tokenizer->decode(token_ids(outputs[i])).c_str());
  }
  std::fflush(stdout);
  const SchedulerStats s = coordinator.stats();
  std::fprintf(stderr, "%zu requests, %lld prompt + %lld generated tokens in %.3f s: %.1f tokens/s (%lld steps, %lld preemptions)\n",
               outputs.size(), static_cast<long long>(s.prompt_tokens), static_cast<long long>(s.generated_tokens),
               seconds, (s.prompt_tokens + s.generated_tokens) / seconds, static_cast<long long>(s.steps),
               static_cast<long long>(s.preemptions));
  int64_t evictions = 0;
  for (int r = 0; r < coordinator.size(); ++r) {
    const Scheduler& replica = coordinator.scheduler(r);
    evictions += replica.blocks().evictions();
    if (coordinator.size() > 1)
      std::fprintf(stderr, "replica %d: %lld requests, %lld steps, %lld generated tokens\n", r,
                   static_cast<long long>(coordinator.routed(r)), static_cast<long long>(replica.stats().steps),
                   static_cast<long long>(replica.stats().generated_tokens));
  }
  if (options.prefix_caching.enabled)
    std::fprintf(stderr, "prefix cache: %lld of %lld prompt tokens hit, %lld blocks evicted\n",
                 static_cast<long long>(s.prefix_cache_hits), static_cast<long long>(s.prefix_cache_queries),
                 static_cast<long long>(evictions));
  if (runner) {
    const double comm = engine.ctx.tp->seconds() + engine.ctx.control->seconds() +
                        (engine.ctx.next ? engine.ctx.next->seconds() : 0);
    std::fprintf(stderr, "rank 0: %.3f s in communication (%.2f ms per step)\n", comm, 1000 * comm / std::max<int64_t>(1, s.steps));
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace lattice::launcher
