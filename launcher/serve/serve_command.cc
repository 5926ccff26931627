// lattice serve: rank 0 runs the HTTP (and gRPC) front ends and the coordinator loop; the other ranks run
// the worker loop. Front ends start before the model loads (answering 503) so that load balancers see
// the process; SIGINT/SIGTERM stop accepting, let queued requests finish, and shut the workers down.
// Liveness: a step watchdog (--step-timeout) and the launcher's kill sequence (SIGCONT from the parent process)
// end every open request with an error and then the job, instead of leaving clients on a silent stall.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <signal.h>
#include <unistd.h>

#include "engine/scheduler/replica_coordinator.h"
#include "launcher/commands.h"
#include "launcher/serve/engine_gauges.h"
#include "launcher/serve/engine_grid.h"
#include "launcher/serve/grpc_server.h"
#include "launcher/serve/http_server.h"
#include "parallel/mpi_runtime.h"
#ifdef LATTICE_HAVE_HIREDIS
#include "launcher/serve/redis_response_cache.h"
#endif

namespace lattice::launcher {

namespace {

const char* kHelp = R"(usage: [mpirun -np N] lattice serve --model DIR [--tp X --pp Y --dp Z] [flags]
  --tp X --pp Y --dp Z    Z replicas of the model split over X x Y ranks each (N = X * Y * Z); rank 0 routes every
                          request to one replica (docs/parallelism.md)
  --enable-expert-parallel  (or --ep) a MoE model's experts split whole over the TP group (docs/parallelism.md)
  --host ADDR             listen address (default 127.0.0.1)
  --port N                HTTP port (default 8000; 0 picks a free one)
  --grpc-port N           gRPC port (default 8001; 0 picks a free one; -1 disables gRPC)
  --api-key-file PATH     require 'Authorization: Bearer KEY' (gRPC: metadata 'authorization'), KEY being the
                          file's content; or set LATTICE_API_KEY (--api-key KEY also works, but shows in ps)
                          Without a key: POST bodies must be 'Content-Type: application/json' and requests
                          from a foreign browser Origin are refused (403), so web pages cannot drive the server.
  --served-model-name S   the model id clients send and /v1/models lists (default: DIR's name)
  --max-pending N         sequences queued or running before requests get 429 (default 256)
  --max-body-kb N         request body limit (default 4096; larger bodies get 413)
  --max-wait-ms N         dynamic batching window from an idle engine (default 2)
  --step-timeout S        step watchdog: when a step has not finished on every rank after S seconds, /health turns
                          503, open requests end with an error, and the job aborts naming the stalled rank
                          (default 60; 0 disables); --first-step-timeout S: the same for the first steps (600)
  --kv-cache-mb MB (or --kv-cache-blocks N)  --block-size N  --max-tokens-per-step N  --max-seqs N  --pp-layers L
  --device cuda|cpu       default: cuda when a GPU is visible;  --dtype auto|bf16|f16|f32 (auto: the checkpoint's
                          half type on a GPU, f32 on the CPU);  --gpu-memory-utilization F (0.90);  --dummy-weights
  --no-enable-prefix-caching  compute every prompt in full (default: reuse the KV blocks of cached prefixes)
  --no-cuda-graphs (alias --enforce-eager)  on a GPU, run decode steps eagerly (default: replay CUDA graphs
                              captured at start-up per batch-size and context bucket)
  --async-scheduling          plan each pure-decode step while the previous one runs (default off:
                              --no-async-scheduling; docs/cuda.md)
  --response-cache memory|redis://HOST:PORT[/DB]  answer repeated deterministic requests (greedy, or seeded)
                          from a cache of whole responses, in memory or shared in Redis (HTTP; header
                          X-Lattice-Cache: hit|miss); --response-cache-ttl S (600); --response-cache-mb MB (256,
                          in memory; Redis is bounded by its maxmemory)
Endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics.
)";

// How long a stopping server waits for clients to take the ends of their responses.
constexpr std::chrono::seconds kDrainTimeout(10);
// The same for a failing job (a stalled or dead rank), which must finish before the launcher's SIGKILL: Open
// MPI's mpirun sends SIGCONT, SIGTERM one second later and SIGKILL one second after that. The failing server
// answers 503 for kFailLinger at least, so that health checks and new clients see why before it goes.
constexpr std::chrono::milliseconds kFailDrainTimeout(1500), kFailLinger(1000);

std::atomic<int> g_signal{0};
std::atomic<pid_t> g_cont_sender{0};
extern "C" void on_signal(int sig, siginfo_t* info, void*) {
  if (sig == SIGCONT)
    g_cont_sender = info ? info->si_pid : 0;
  else
    g_signal = sig;
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGCONT}) sigaction(sig, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// Polls for SIGINT/SIGTERM (then runs `stop` once: a drain) and, when `teardown` is given (rank 0 under an MPI
// launcher), for a SIGCONT from the parent process (then runs `teardown` once and stops watching). The parent
// is then mpirun or its node daemon, which starts killing a job with SIGCONT (then SIGTERM, then SIGKILL) when
// a rank has died or failed; an operator's `kill -TERM` and Slurm's `scancel --signal=TERM` send no SIGCONT.
// (A single process's parent is a shell, which sends SIGCONT on `fg`.) Joins on destruction.
class SignalWatcher {
 public:
  SignalWatcher(std::function<void()> stop, std::function<void()> teardown) : thread_([this, stop, teardown] {
    bool stopped = false;
    while (!done_) {
      const pid_t cont = g_cont_sender;
      if (teardown && cont != 0 && cont == getppid()) {
        teardown();
        return;
      }
      if (g_signal && !stopped) {
        std::fprintf(stderr, "lattice serve: signal %d, finishing queued requests and shutting down\n",
                     g_signal.load());
        stop();
        stopped = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }) {}
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The API key from --api-key-file, --api-key or $LATTICE_API_KEY ("" for none). The file and the variable keep
// the key out of the command line, which every local user can read in /proc. Only the coordinator (rank 0)
// serves, so only it reads the file, which need not exist on the other ranks' nodes.
std::string api_key_from(const CliArgs& args, bool coordinator) {
  const std::optional<std::string> file = args.maybe("api-key-file"), inline_key = args.maybe("api-key");
  LATTICE_CHECK(!(file && inline_key), "give --api-key-file or --api-key, not both");
  if (!coordinator) return "";
  std::string key;
  if (file) {
    std::ifstream in(*file);
    LATTICE_CHECK(in.good(), "cannot read --api-key-file '", *file, "'");
    key.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (inline_key) {
    key = *inline_key;
  } else if (const char* env = std::getenv("LATTICE_API_KEY")) {
    key = env;
  }
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front()))) key.erase(0, 1);
  LATTICE_CHECK(!(file && key.empty()), "--api-key-file '", *file, "' holds no key");
  return key;
}

std::unique_ptr<serve::ModelInfo> model_info(const EngineOptions& engine_flags, const LoadedEngine& engine,
                                             const std::string& served_name) {
  auto info = std::make_unique<serve::ModelInfo>();
  info->name = served_name.empty() ? std::filesystem::path(engine_flags.model_dir).filename().string() : served_name;
  if (info->name.empty()) info->name = std::filesystem::path(engine_flags.model_dir).parent_path().filename().string();
  const LmShape shape = engine.model->lm_shape();
  info->limits = {shape.vocab_size, shape.max_positions,
                  static_cast<int64_t>(engine.cache->num_blocks()) * engine.cache->shape().block_size,
                  engine.max_top_k()};
  if (std::filesystem::exists(std::filesystem::path(engine_flags.model_dir) / "tokenizer.json")) {
    info->tokenizer = Tokenizer::from_dir(engine_flags.model_dir);
    info->chat_template = serve::ChatTemplate::from_dir(engine_flags.model_dir);
  }
  return info;
}

}  // namespace

int serve_command(const Args& argv, parallel::MpiRuntime* mpi) {
  const CliArgs args(argv, engine_switches({"help"}));
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  serve::HttpOptions http;
  http.host = args.get("host", "127.0.0.1");
  http.port = static_cast<int>(args.get_int("port", 8000));
  const int grpc_port = static_cast<int>(args.get_int("grpc-port", 8001));
  const bool coordinator = !mpi || mpi->world_rank() == 0;
  const std::string api_key = api_key_from(args, coordinator);
  const std::string served_name = args.get("served-model-name", "");
  const int64_t max_pending = args.get_int("max-pending", 256);
  http.max_body_bytes = static_cast<size_t>(args.get_int("max-body-kb", 4096)) << 10;
  const auto max_wait = std::chrono::milliseconds(args.get_int("max-wait-ms", 2));
  serve::StepTimeouts timeouts;
  timeouts.step_seconds = args.get_double("step-timeout", 60);
  timeouts.first_step_seconds = args.get_double("first-step-timeout", 600);
  SchedulerOptions options;
  const EngineOptions engine_flags = engine_options(args);
  options.max_tokens_per_step = engine_flags.limits.max_tokens_per_step;
  options.max_seqs = engine_flags.limits.max_seqs;
  options.async_scheduling = engine_flags.async_scheduling;
  const std::string response_cache = args.get("response-cache", "");
  const int64_t response_cache_ttl = args.get_int("response-cache-ttl", 600),
                response_cache_mb = args.get_int("response-cache-mb", 256);
  args.reject_unknown();
  std::optional<serve::RedisAddress> redis;
  if (!response_cache.empty() && response_cache != "memory") redis = serve::parse_redis_url(response_cache);
#ifndef LATTICE_HAVE_HIREDIS
  LATTICE_CHECK(!redis, "--response-cache redis://... needs a build with hiredis (libhiredis-dev; scripts/setup)");
#endif
  LATTICE_CHECK(response_cache_ttl > 0 && response_cache_mb > 0, "--response-cache-ttl and --response-cache-mb must be > 0");
  LATTICE_CHECK(http.port >= 0 && http.port < 65536, "--port must be in [0, 65535], got ", http.port);
  LATTICE_CHECK(grpc_port >= -1 && grpc_port < 65536, "--grpc-port must be in [-1, 65535], got ", grpc_port);
  LATTICE_CHECK(max_pending > 0, "--max-pending must be > 0, got ", max_pending);
  LATTICE_CHECK(timeouts.step_seconds >= 0 && timeouts.first_step_seconds >= 0,
                "--step-timeout and --first-step-timeout must be >= 0 (0 disables), got ", timeouts.step_seconds,
                " and ", timeouts.first_step_seconds);
  // A handler thread for every sequence that may be pending, plus spares so that /health and /metrics are
  // answered even when every pending request holds a connection open (and 429s go out at once).
  http.threads = static_cast<int>(std::min<int64_t>(max_pending, 4096) + 32);
  // Tests only: slow each step down (to cancel mid-stream, fill the queue) or the load (to see 503).
  auto env_ms = [](const char* name) {
    const char* v = std::getenv(name);
    return std::chrono::milliseconds(v ? std::atol(v) : 0);
  };
  const auto step_delay = env_ms("LATTICE_SERVE_STEP_DELAY_MS"), load_delay = env_ms("LATTICE_SERVE_LOAD_DELAY_MS");

  install_signal_handlers();
  serve::Metrics metrics;
  serve::describe_serving_metrics(metrics);
  RequestInbox inbox;
  serve::EngineBridge bridge(inbox, metrics, max_pending);
  serve::ServeContext context(bridge, metrics, api_key);
  std::unique_ptr<serve::CachedResponses> responses;  // outlives the front ends that read it
  std::unique_ptr<serve::HttpFrontEnd> http_front;
  std::unique_ptr<serve::GrpcFrontEnd> grpc_front;
  if (coordinator) {
    http_front = std::make_unique<serve::HttpFrontEnd>(context, http);
    const int port = http_front->start();
    // The pid is rank 0's: under mpirun, SIGTERM to it (not to mpirun) shuts the job down gracefully.
    std::fprintf(stderr, "lattice serve: HTTP on http://%s:%d (pid %d)\n", http.host.c_str(), port, static_cast<int>(getpid()));
    if (grpc_port >= 0) {
      grpc_front = std::make_unique<serve::GrpcFrontEnd>(context, http.max_body_bytes);
      std::fprintf(stderr, "lattice serve: gRPC on %s:%d\n", http.host.c_str(), grpc_front->start(http.host, grpc_port));
    }
  }
  // Ends the job after a failure that the serve loop cannot report, being blocked on a rank that has stopped or
  // gone: /health turns 503, new requests get 503, open requests end with a 500 error event (streams: then
  // [DONE] and the end of the chunked body), and once their front ends have written that (1.5 s at most; 1 s
  // at least) the whole job aborts with exit code 1.
  // Once: the replicas' watchdogs and the signal watcher may all see the failure.
  std::atomic<bool> failing{false};
  auto fail_job = [&](const std::vector<std::string>& report, const std::string& message) {
    if (failing.exchange(true)) return;
    const auto linger_until = std::chrono::steady_clock::now() + kFailLinger;
    for (const std::string& line : report) std::fprintf(stderr, "lattice serve: %s\n", line.c_str());
    bridge.fail_all(message);
    metrics.set("lattice_ready", 0);
    if (!bridge.wait_streams_released(kFailDrainTimeout))
      std::fprintf(stderr, "lattice serve: some clients did not read their error within %lld ms\n",
                   static_cast<long long>(kFailDrainTimeout.count()));
    std::this_thread::sleep_until(linger_until);
    std::fprintf(stderr, "lattice serve: aborting the job\n");
    if (mpi && mpi->world_size() > 1) parallel::MpiRuntime::abort_job(1);
    std::fflush(stderr);
    std::_Exit(1);
  };
  SignalWatcher watcher([&] {
    bridge.stop_accepting();
    inbox.close();
  }, coordinator && mpi ? std::function<void()>([&] {
    std::fprintf(stderr, "lattice serve: SIGCONT from the launcher (pid %d): the job is being killed\n",
                 static_cast<int>(getppid()));
    fail_job({}, "the job is being killed by its launcher (a rank has exited or failed)");
  }) : nullptr);

  if (coordinator && load_delay.count() > 0) std::this_thread::sleep_for(load_delay);
  LoadedEngine engine = load_engine(engine_flags, mpi, false);
  EngineGrid grid(engine);
  if (!grid.is_coordinator()) {
    grid.run_worker();
    return 0;
  }
  options.eos_token_ids = engine.model->config().eos_token_ids;
  options.max_top_k = engine.max_top_k();
  options.prefix_caching = prefix_caching(engine_flags, engine);
  std::unique_ptr<serve::ModelInfo> info = model_info(engine_flags, engine, served_name);
  if (!response_cache.empty()) {
    // Keyed by the served name and the model's identity (config, dtype, weights source).
    std::unique_ptr<serve::ResponseCache> store;
#ifdef LATTICE_HAVE_HIREDIS
    if (redis) store = std::make_unique<serve::RedisResponseCache>(*redis, std::chrono::seconds(response_cache_ttl), metrics);
#endif
    if (!store)
      store = std::make_unique<serve::MemoryResponseCache>(static_cast<size_t>(response_cache_mb) << 20,
                                                            std::chrono::seconds(response_cache_ttl));
    responses = std::make_unique<serve::CachedResponses>(
        std::move(store), info->name + "|" + std::to_string(options.prefix_caching.salt), metrics);
    context.responses = responses.get();
  }
  if (info->tokenizer && info->tokenizer->eos_id()) options.eos_token_ids.push_back(*info->tokenizer->eos_id());
  context.set_model(std::move(info));
  std::unique_ptr<ReplicaCoordinator> replicas;  // one scheduler per replica; made once its executors are
  serve::EngineGauges gauges(metrics, bridge);
  auto update_gauges = [&](int64_t ending) { gauges.update(*replicas, ending); };
  const MeteredExecutor::StepFn after_step = [&](size_t batch, double seconds, const StepResult& result) {
    metrics.observe("lattice_batch_size", static_cast<double>(batch));
    // One process: the step as rank 0 sees it. A grid: each stage's own part, by the rank that ran it.
    if (result.stage_times.empty()) metrics.observe("lattice_step_time_seconds", {{"rank", "0"}}, seconds);
    for (const StageTime& t : result.stage_times)
      metrics.observe("lattice_step_time_seconds", {{"rank", std::to_string(t.rank)}}, t.seconds);
    update_gauges(0);  // also after steps that produce no event (prefill chunks)
  };
  std::vector<std::unique_ptr<serve::StepWatchdog>> watchdogs;  // one per replica: each times its own steps
  std::vector<std::unique_ptr<MeteredExecutor>> metered;           // one per replica
  std::vector<StepExecutor*> executors;
  for (StepExecutor* e : grid.executors()) {
    const int replica = static_cast<int>(metered.size());
    watchdogs.push_back(std::make_unique<serve::StepWatchdog>(
        timeouts, [&grid, replica](int64_t step, double seconds) { return grid.stall_report(replica, step, seconds); },
        [&](const std::vector<std::string>& report) { fail_job(report, "the engine stalled: " + report.front()); }));
    metered.push_back(std::make_unique<MeteredExecutor>(*e, after_step, step_delay, watchdogs.back().get()));
    executors.push_back(metered.back().get());
  }
  replicas = std::make_unique<ReplicaCoordinator>(executors, engine.model->lm_shape(), engine.cache->num_blocks(),
                                                  static_cast<int32_t>(engine.cache->shape().block_size), options);
  update_gauges(0);
  bridge.set_ready();
  metrics.set("lattice_ready", 1);
  std::fprintf(stderr, "lattice serve: ready (model '%s')\n", context.model()->name.c_str());
  try {
    replicas->serve(inbox, max_wait, [&](const TokenEvent& e) {
      // First: a client that sees its last event must find its blocks freed (and the queue empty) in /metrics.
      update_gauges(e.finish != FinishReason::none ? 1 : 0);
      bridge.on_event(e);
    }, [&](int64_t id, const std::string& message) { bridge.on_reject(id, message); });
  } catch (const std::exception& e) {
    bridge.fail_all(std::string("engine error: ") + e.what());  // open streams end before the front ends stop
    bridge.wait_streams_released(kDrainTimeout);
    throw;
  }
  // Every request has ended; let the front ends write their last frames (final chunk, [DONE]) before they
  // stop, which cuts open responses.
  if (!bridge.wait_streams_released(kDrainTimeout))
    std::fprintf(stderr, "lattice serve: some clients did not read their last response within %llds\n",
                 static_cast<long long>(kDrainTimeout.count()));
  grid.shutdown_workers();
  if (grpc_front) grpc_front->stop();
  http_front->stop();
  std::fprintf(stderr, "lattice serve: stopped\n");
  return 0;
}

}  // namespace lattice::launcher
