// `lattice plan`: which TP x PP x DP layout to launch for a model on N devices, and what it will deliver, from the
// cost model in planner/ (docs/plan.md). Runs anywhere: it reads config.json and a hardware profile, no GPU.
// `lattice plan calibrate` measures a profile on this machine's device (planner profiles: models/profiles/).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "launcher/cli_args.h"
#include "launcher/commands.h"
#include "launcher/plan_calibrate.h"
#include "planner/layouts.h"

namespace lattice::launcher {

namespace {

ModelConfig load_config(const std::string& model) {
  const std::string path = std::filesystem::is_directory(model) ? model + "/config.json" : model;
  LATTICE_CHECK(std::filesystem::exists(path), "--model: '", path, "' does not exist (a model directory or a config.json)");
  return ModelConfig::from_file(path);
}

DType parse_dtype(const std::string& name) {
  if (name == "bf16") return DType::bf16;
  if (name == "f16") return DType::f16;
  if (name == "f32") return DType::f32;
  LATTICE_THROW("--dtype must be bf16, f16 or f32, got '", name, "'");
}

int calibrate(const Args& argv) {
  const CliArgs args(argv, {"help"});
  if (args.has("help")) {
    std::puts("usage: lattice plan calibrate --device cpu|cuda --out FILE.json [--base PROFILE] [--model DIR|CONFIG]\n"
              "  Times the engine's ops (GEMM at decode and prefill shapes, paged attention, rms_norm, launch) and\n"
              "  writes a hardware profile. cpu: peaks are this machine's measured ceilings; cuda: peaks come from\n"
              "  --base (default h200), the efficiencies are measured. Op shapes from --model (default Llama-3-8B).");
    return 0;
  }
  const std::string device = args.require("device"), out = args.require("out");
  const std::string base_name = args.get("base", device == "cpu" ? "cpu" : "h200");
  const std::string profiles = planner::default_profiles_dir();
  const ModelConfig shape = load_config(args.get("model", profiles + "/../../scripts/models/llama-3-8b/config.json"));
  args.reject_unknown();
  const planner::HardwareProfile p = calibrate_profile(device, shape, planner::HardwareProfile::load(base_name, profiles));
  std::ofstream(out) << p.to_json().dump(2) << "\n";
  std::printf("%s\n", p.to_json().dump(2).c_str());
  return 0;
}

void print_table(const std::vector<planner::LayoutResult>& layouts, int best) {
  constexpr double GiB = 1 << 30;
  std::printf("%-3s %3s %3s %3s %6s %9s | %7s %7s %6s | %9s %9s %11s | %-20s %s\n", "", "tp", "pp", "dp", "batch",
              "kv_tok", "wt_GiB", "kv_GiB", "ws_GiB", "tpot_ms", "ttft_ms", "out_tok/s", "bottleneck", "note");
  for (int i = 0; i < static_cast<int>(layouts.size()); ++i) {
    const planner::LayoutResult& l = layouts[i];
    std::printf("%-3s %3d %3d %3d %6lld %9lld | %7.2f %7.2f %6.2f | ", i == best ? "*" : (l.fits ? "" : "x"), l.tp,
                l.pp, l.dp, static_cast<long long>(l.batch), static_cast<long long>(l.kv_tokens),
                l.memory.weight_bytes / GiB, l.memory.kv_bytes / GiB, l.memory.workspace_bytes() / GiB);
    if (l.fits)
      std::printf("%9.3f %9.2f %11.0f | %-20s %s\n", l.decode_step_s * 1e3, l.prefill_s * 1e3, l.output_tokens_per_s,
                  planner::term_name(l.bottleneck), l.note.c_str());
    else
      std::printf("%9s %9s %11s | %-20s %s\n", "-", "-", "-", "-", l.note.c_str());
  }
}

}  // namespace

int plan_command(const Args& argv, parallel::MpiRuntime*) {
  if (!argv.empty() && argv[0] == "calibrate") return calibrate(Args(argv.begin() + 1, argv.end()));
  const CliArgs args(argv, {"help", "json"});
  if (args.has("help")) {
    std::puts(
        "usage: lattice plan --model DIR|CONFIG.json --gpus N --gpu h200|h100-sxm|a100-80gb|cpu|PROFILE.json\n"
        "         [--interconnect INTRA[,INTER]] [--gpus-per-node G] --isl 128 --osl 128 [--batch B | --rate R]\n"
        "         [--latency-slo-ms T] [--objective throughput|latency] [--json] [--plot FILE.png]\n"
        "         [--dtype bf16|f16|f32] [--gpu-memory-utilization 0.9] [--max-seqs 256] [--max-tokens-per-step 512]\n"
        "         [--attention-efficiency BW,FLOPS]  (fractions of the peaks for attention, e.g. flash kernels)\n"
        "       lattice plan calibrate --device cpu|cuda --out FILE.json (see lattice plan calibrate --help)\n"
        "  Predicts every tp x pp x dp layout on N devices: memory per device, time per output token (one decode\n"
        "  step of the batch), time to first token, output tokens/s, the bottleneck; marks layouts that do not fit\n"
        "  (x) and recommends one (*). --batch: sequences per replica (default: the most the KV cache holds, or 1 for\n"
        "  --objective latency). --rate: requests/s over all replicas. The model is explained in docs/plan.md.");
    return 0;
  }
  const ModelConfig config = load_config(args.require("model"));
  const planner::HardwareProfile hw =
      planner::HardwareProfile::load(args.get("gpu", "h200"), planner::default_profiles_dir());
  planner::HardwareProfile node = hw;
  node.gpus_per_node = static_cast<int>(args.get_int("gpus-per-node", hw.gpus_per_node));
  if (auto att = args.maybe("attention-efficiency")) {  // another engine's attention kernels on the same device
    double bw = 0, fl = 0;
    LATTICE_CHECK(std::sscanf(att->c_str(), "%lf,%lf", &bw, &fl) == 2 && bw > 0 && fl > 0,
                  "--attention-efficiency expects BANDWIDTH,FLOPS fractions, got '", *att, "'");
    node.efficiency[planner::OpKind::attention_decode] = node.efficiency[planner::OpKind::attention_prefill] = {bw, fl};
  }
  planner::PlanRequest r;
  r.gpus = static_cast<int>(args.get_int("gpus", 1));
  r.isl = args.get_int("isl", 128);
  r.osl = args.get_int("osl", 128);
  LATTICE_CHECK(r.isl > 0 && r.osl > 0, "--isl and --osl must be > 0");
  if (args.maybe("batch")) r.batch = args.get_int("batch", 1);
  if (args.maybe("rate")) r.rate = args.get_double("rate", 1);
  LATTICE_CHECK(!(r.batch && r.rate), "give --batch or --rate, not both");
  LATTICE_CHECK(!r.batch || *r.batch > 0, "--batch must be > 0");
  LATTICE_CHECK(!r.rate || *r.rate > 0, "--rate must be > 0");
  if (args.maybe("latency-slo-ms")) r.latency_slo_ms = args.get_double("latency-slo-ms", 0);
  r.objective = args.get("objective", "throughput");
  r.intra_node_link = hw.intra_node_link;
  r.inter_node_link = hw.inter_node_link;
  if (auto links = args.maybe("interconnect")) {
    const size_t comma = links->find(',');
    r.intra_node_link = links->substr(0, comma);
    if (comma != std::string::npos) r.inter_node_link = links->substr(comma + 1);
    node.link(r.intra_node_link);
    node.link(r.inter_node_link);
  }
  r.memory.dtype = parse_dtype(args.get("dtype", hw.dtype));
  r.memory.gpu_memory_utilization = args.get_double("gpu-memory-utilization", 0.90);
  r.memory.limits.max_seqs = args.get_int("max-seqs", 256);
  r.memory.limits.max_tokens_per_step = args.get_int("max-tokens-per-step", 512);
  if (r.batch) r.memory.limits.max_seqs = std::max(r.memory.limits.max_seqs, *r.batch);  // the engine's --max-seqs
  const bool json_out = args.has("json");
  const std::string plot = args.get("plot", "");
  args.reject_unknown();
  const bool multi_node = r.gpus > node.gpus_per_node;
  LATTICE_CHECK(r.gpus == 1 || !r.intra_node_link.empty(), "profile ", hw.name, " has no interconnect for ", r.gpus,
                " devices");
  LATTICE_CHECK(!multi_node || !r.inter_node_link.empty(), "profile ", hw.name, " has no link between nodes");

  const std::vector<planner::LayoutResult> layouts = planner::plan_layouts(config, node, r);
  const int best = planner::recommend(layouts, r.objective);
  nlohmann::ordered_json j = {{"model", args.require("model")}, {"gpu", hw.name},        {"gpus", r.gpus},
                              {"gpus_per_node", node.gpus_per_node}, {"intra_node_link", r.intra_node_link},
                              {"inter_node_link", r.inter_node_link}, {"dtype", dtype_name(r.memory.dtype)},
                              {"isl", r.isl}, {"osl", r.osl},        {"objective", r.objective}};
  for (const planner::LayoutResult& l : layouts) j["layouts"].push_back(planner::layout_json(l));
  j["recommended"] = best;
  if (!plot.empty()) {
    const std::filesystem::path tmp = std::filesystem::temp_directory_path() / ("lattice-plan-" + std::to_string(getpid()) + ".json");
    std::ofstream(tmp) << j.dump() << "\n";
    const std::string script = planner::default_profiles_dir() + "/../../scripts/plot_plan.py";
    const char* python = std::getenv("LATTICE_PYTHON");  // an interpreter with matplotlib, if not python3
    const std::string cmd = std::string(python ? python : "python3") + " '" + script + "' '" + tmp.string() + "' '" + plot + "'";
    const int rc = std::system(cmd.c_str());
    std::filesystem::remove(tmp);
    LATTICE_CHECK(rc == 0, "--plot: '", cmd, "' failed (exit ", rc, ")");
  }
  if (json_out) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s on %d x %s (%s%s%s), %s, isl %lld, osl %lld, objective %s\n", args.require("model").c_str(), r.gpus,
              hw.name.c_str(), r.intra_node_link.c_str(), multi_node ? " / " : "",
              multi_node ? r.inter_node_link.c_str() : "", dtype_name(r.memory.dtype), static_cast<long long>(r.isl),
              static_cast<long long>(r.osl), r.objective.c_str());
  print_table(layouts, best);
  if (best >= 0)
    std::printf("recommended: tp %d x pp %d x dp %d, batch %lld per replica\n", layouts[best].tp, layouts[best].pp,
                layouts[best].dp, static_cast<long long>(layouts[best].batch));
  else
    std::printf("no layout fits and meets the constraints\n");
  return 0;
}

}  // namespace lattice::launcher
