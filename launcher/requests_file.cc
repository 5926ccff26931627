#include "launcher/requests_file.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"

namespace lattice::launcher {

using nlohmann::json;

SamplingParams sampling_defaults(const CliArgs& args) {
  SamplingParams p;
  p.max_tokens = static_cast<int32_t>(args.get_int("max-tokens", 16));
  p.temperature = static_cast<float>(args.get_double("temperature", 1.0));
  p.top_k = static_cast<int32_t>(args.get_int("top-k", 0));
  p.top_p = static_cast<float>(args.get_double("top-p", 1.0));
  p.min_p = static_cast<float>(args.get_double("min-p", 0.0));
  p.repetition_penalty = static_cast<float>(args.get_double("repetition-penalty", 1.0));
  p.presence_penalty = static_cast<float>(args.get_double("presence-penalty", 0.0));
  p.frequency_penalty = static_cast<float>(args.get_double("frequency-penalty", 0.0));
  if (args.has("seed")) p.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  if (auto stop = args.maybe("stop-ids")) p.stop_token_ids = parse_int_list(*stop, "--stop-ids");
  p.ignore_eos = args.has("ignore-eos");
  p.logprobs = static_cast<int32_t>(args.get_int("logprobs", 0));
  return p;
}

namespace {

template <typename T>
T field(const json& j, const char* key, const std::string& where) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    LATTICE_THROW(where, ": field '", key, "' has the wrong type");
  }
}

GenerateRequest parse_request(const json& j, const SamplingParams& defaults, const std::string& where,
                              int64_t index) {
  LATTICE_CHECK(j.is_object(), where, ": each line must be a JSON object");
  static const std::set<std::string> known = {"id", "prompt", "prompt_ids", "max_tokens", "temperature", "top_k", "top_p",
                                              "min_p", "repetition_penalty", "presence_penalty",
                                              "frequency_penalty", "seed", "stop_token_ids", "ignore_eos",
                                              "logprobs"};
  for (const auto& [key, value] : j.items())
    LATTICE_CHECK(known.count(key), where, ": unknown field '", key, "'");
  GenerateRequest r;
  r.request.id = index;
  r.name = !j.contains("id") ? std::to_string(index) : j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
  LATTICE_CHECK(j.contains("prompt_ids") != j.contains("prompt"), where, ": give 'prompt' (text) or 'prompt_ids'");
  if (j.contains("prompt"))
    r.text = field<std::string>(j, "prompt", where);
  else
    r.request.prompt = field<std::vector<int32_t>>(j, "prompt_ids", where);
  SamplingParams& p = r.request.params;
  p = defaults;
  if (j.contains("max_tokens")) p.max_tokens = field<int32_t>(j, "max_tokens", where);
  if (j.contains("temperature")) p.temperature = field<float>(j, "temperature", where);
  if (j.contains("top_k")) p.top_k = field<int32_t>(j, "top_k", where);
  if (j.contains("top_p")) p.top_p = field<float>(j, "top_p", where);
  if (j.contains("min_p")) p.min_p = field<float>(j, "min_p", where);
  if (j.contains("repetition_penalty")) p.repetition_penalty = field<float>(j, "repetition_penalty", where);
  if (j.contains("presence_penalty")) p.presence_penalty = field<float>(j, "presence_penalty", where);
  if (j.contains("frequency_penalty")) p.frequency_penalty = field<float>(j, "frequency_penalty", where);
  if (j.contains("seed")) p.seed = field<uint64_t>(j, "seed", where);
  if (j.contains("stop_token_ids")) p.stop_token_ids = field<std::vector<int32_t>>(j, "stop_token_ids", where);
  if (j.contains("ignore_eos")) p.ignore_eos = field<bool>(j, "ignore_eos", where);
  if (j.contains("logprobs")) p.logprobs = field<int32_t>(j, "logprobs", where);
  return r;
}

}  // namespace

std::vector<GenerateRequest> read_requests_file(const std::string& path, const SamplingParams& defaults) {
  std::ifstream in(path);
  LATTICE_CHECK(in.good(), "cannot read requests file ", path);
  std::vector<GenerateRequest> out;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      LATTICE_THROW(where, ": not valid JSON: ", e.what());
    }
    out.push_back(parse_request(j, defaults, where, static_cast<int64_t>(out.size())));
  }
  LATTICE_CHECK(!out.empty(), path, " holds no requests");
  return out;
}

}  // namespace lattice::launcher
