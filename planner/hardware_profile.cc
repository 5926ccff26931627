#include "planner/hardware_profile.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace lattice::planner {

namespace {

constexpr OpKind kKinds[] = {OpKind::gemm, OpKind::attention_decode, OpKind::attention_prefill, OpKind::elementwise};

double positive(const nlohmann::json& j, const char* key, const std::string& origin) {
  LATTICE_CHECK(j.contains(key) && j[key].is_number(), origin, ": missing number '", key, "'");
  const double v = j[key].get<double>();
  LATTICE_CHECK(v > 0, origin, ": '", key, "' must be > 0, got ", v);
  return v;
}

}  // namespace

const char* op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::gemm: return "gemm";
    case OpKind::attention_decode: return "attention_decode";
    case OpKind::attention_prefill: return "attention_prefill";
    case OpKind::elementwise: return "elementwise";
  }
  return "?";
}

double HardwareProfile::bandwidth(OpKind kind) const { return peak_memory_gbps * 1e9 * efficiency.at(kind).bandwidth; }
double HardwareProfile::flops(OpKind kind) const { return peak_tflops * 1e12 * efficiency.at(kind).flops; }

const Link& HardwareProfile::link(const std::string& link_name) const {
  const auto it = links.find(link_name);
  if (it == links.end()) {
    std::string known;
    for (const auto& [n, l] : links) known += (known.empty() ? "" : ", ") + n;
    LATTICE_THROW("profile ", name, " has no interconnect '", link_name, "' (it has: ", known, ")");
  }
  return it->second;
}

HardwareProfile HardwareProfile::from_json(const nlohmann::json& j, const std::string& origin) {
  HardwareProfile p;
  p.name = j.value("name", std::string("unnamed"));
  p.memory_bytes = positive(j, "memory_gib", origin) * (1 << 30);
  p.reserved_bytes = j.value("reserved_gib", 0.0) * (1 << 30);
  p.peak_memory_gbps = positive(j, "peak_memory_gbps", origin);
  p.peak_tflops = positive(j, "peak_tflops", origin);
  p.dtype = j.value("dtype", std::string("bf16"));
  LATTICE_CHECK(j.contains("efficiency"), origin, ": missing 'efficiency'");
  for (OpKind k : kKinds) {
    const std::string where = origin + ": efficiency." + op_kind_name(k);
    LATTICE_CHECK(j["efficiency"].contains(op_kind_name(k)), where, " is missing");
    const nlohmann::json& e = j["efficiency"][op_kind_name(k)];
    p.efficiency[k] = {positive(e, "bandwidth", where), positive(e, "flops", where)};
  }
  p.launch_overhead_us = j.value("launch_overhead_us", 0.0);
  p.step_overhead_us = j.value("step_overhead_us", 0.0);
  p.gpus_per_node = j.value("gpus_per_node", 1);
  if (j.contains("interconnects"))
    for (const auto& [n, l] : j["interconnects"].items())
      p.links[n] = {positive(l, "bus_gbps", origin + ": interconnects." + n), l.value("latency_us", 0.0)};
  p.intra_node_link = j.value("intra_node_link", std::string());
  p.inter_node_link = j.value("inter_node_link", std::string());
  if (!p.intra_node_link.empty()) p.link(p.intra_node_link);
  if (!p.inter_node_link.empty()) p.link(p.inter_node_link);
  if (j.contains("notes")) p.notes = j["notes"];
  return p;
}

HardwareProfile HardwareProfile::load(const std::string& name_or_path, const std::string& profiles_dir) {
  const bool is_path = name_or_path.size() > 5 && name_or_path.substr(name_or_path.size() - 5) == ".json";
  const std::string path = is_path ? name_or_path : profiles_dir + "/" + name_or_path + ".json";
  std::ifstream in(path);
  LATTICE_CHECK(in.good(), "no hardware profile '", name_or_path, "' (", path, " cannot be read)");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    LATTICE_THROW(path, ": not valid JSON: ", e.what());
  }
  return from_json(j, path);
}

nlohmann::ordered_json HardwareProfile::to_json() const {
  nlohmann::ordered_json j;
  j["name"] = name;
  j["memory_gib"] = memory_bytes / (1 << 30);
  j["reserved_gib"] = reserved_bytes / (1 << 30);
  j["peak_memory_gbps"] = peak_memory_gbps;
  j["peak_tflops"] = peak_tflops;
  j["dtype"] = dtype;
  for (const auto& [k, e] : efficiency) j["efficiency"][op_kind_name(k)] = {{"bandwidth", e.bandwidth}, {"flops", e.flops}};
  j["launch_overhead_us"] = launch_overhead_us;
  j["step_overhead_us"] = step_overhead_us;
  j["gpus_per_node"] = gpus_per_node;
  j["intra_node_link"] = intra_node_link;
  j["inter_node_link"] = inter_node_link;
  for (const auto& [n, l] : links) j["interconnects"][n] = {{"bus_gbps", l.bus_gbps}, {"latency_us", l.latency_us}};
  j["notes"] = notes;
  return j;
}

std::string default_profiles_dir() {
  if (const char* dir = std::getenv("LATTICE_PROFILES_DIR")) return dir;
  return LATTICE_PROFILES_DIR;
}

}  // namespace lattice::planner
