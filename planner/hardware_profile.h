// A device and its links as the cost model sees them (docs/plan.md): datasheet peaks times achieved-efficiency
// factors per kind of op, launch and step overheads, memory, and the interconnects collectives run over.
// Loaded from JSON data files (models/profiles/<name>.json); `lattice plan calibrate` writes them.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace lattice::planner {

// The kinds of op whose achieved fraction of the peaks differs (each calibrated on its own).
enum class OpKind { gemm, attention_decode, attention_prefill, elementwise };
const char* op_kind_name(OpKind kind);

struct Efficiency {
  double bandwidth = 1.0;  // achieved / peak memory bandwidth
  double flops = 1.0;      // achieved / peak FLOP/s
};

struct Link {
  double bus_gbps = 0;    // per-GPU bus bandwidth a ring collective achieves (NCCL's "busbw"), GB/s
  double latency_us = 0;  // per hop
};

struct HardwareProfile {
  std::string name;
  double memory_bytes = 0;        // per device
  double reserved_bytes = 0;      // taken before the engine allocates (CUDA context, cuBLAS/NCCL workspaces)
  double peak_memory_gbps = 0;    // read bandwidth, GB/s
  double peak_tflops = 0;         // dense GEMM peak in the compute dtype, TFLOP/s
  std::string dtype = "bf16";     // the compute dtype these peaks are for
  std::map<OpKind, Efficiency> efficiency;
  double launch_overhead_us = 0;  // per op
  double step_overhead_us = 0;    // per step on the coordinator (scheduling, metadata, sampling launch)
  int gpus_per_node = 8;
  std::string intra_node_link, inter_node_link;  // defaults for --interconnect
  std::map<std::string, Link> links;
  nlohmann::ordered_json notes;  // provenance: what was measured, what is datasheet

  double bandwidth(OpKind kind) const;  // achieved bytes/s
  double flops(OpKind kind) const;      // achieved FLOP/s
  const Link& link(const std::string& name) const;

  static HardwareProfile from_json(const nlohmann::json& j, const std::string& origin);
  // `name_or_path`: a file path ending in .json, or a name looked up as <profiles_dir>/<name>.json.
  static HardwareProfile load(const std::string& name_or_path, const std::string& profiles_dir);
  nlohmann::ordered_json to_json() const;
};

// Where the shipped profiles are: $LATTICE_PROFILES_DIR, else the source tree's models/profiles.
std::string default_profiles_dir();

}  // namespace lattice::planner
