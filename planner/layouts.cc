#include "planner/layouts.h"

#include <algorithm>
#include <cstdio>

#include "engine/core/error.h"
#include "parallel/sharding.h"

namespace lattice::planner {

namespace {

// Links of a replica: the TP group stays inside a node when it fits there; pipeline stages cross nodes once the
// replica needs more than one.
Link link_or_none(const HardwareProfile& hw, const std::string& name) { return name.empty() ? Link{1, 0} : hw.link(name); }
std::string tp_link_name(const HardwareProfile& hw, int tp, const PlanRequest& r) {
  return tp == 1 ? "" : tp <= hw.gpus_per_node ? r.intra_node_link : r.inter_node_link;
}
std::string pp_link_name(const HardwareProfile& hw, int tp, int pp, const PlanRequest& r) {
  return pp == 1 ? "" : tp * pp <= hw.gpus_per_node ? r.intra_node_link : r.inter_node_link;
}

struct PipelineTimes {
  std::vector<StageCost> stages;
  double send_s = 0;    // the step's activations from one stage to the next
  double return_s = 0;  // the sampled tokens from the last stage back to the coordinator: one hop's latency
};

// Each stage's cost for a step of `seqs`, and the activations' send between stages.
PipelineTimes stage_costs(const ModelConfig& c, const HardwareProfile& hw, int tp, int pp,
                          const std::vector<SeqShape>& seqs, const PlanRequest& r) {
  const std::vector<int64_t> bounds = parallel::pipeline_layer_bounds(c.num_layers, pp, {});
  const Link tp_link = link_or_none(hw, tp_link_name(hw, tp, r));
  PipelineTimes t;
  int64_t tokens = 0;
  for (const SeqShape& s : seqs) tokens += s.new_tokens;
  for (int k = 0; k < pp; ++k) {
    StageStep step{tp, bounds[k + 1] - bounds[k], k == 0, k == pp - 1, seqs,
                   static_cast<int64_t>(dtype_size(r.memory.dtype))};
    StageCost cost = stage_step_cost(c, step, hw, tp_link);
    if (k == 0) cost.breakdown[Term::launch] += hw.step_overhead_us * 1e-6;  // the coordinator's host work
    t.stages.push_back(std::move(cost));
  }
  if (pp > 1) {
    const Link link = link_or_none(hw, pp_link_name(hw, tp, pp, r));
    t.send_s = send_seconds(static_cast<double>(tokens * c.hidden_size) * dtype_size(r.memory.dtype), link);
    t.return_s = link.latency_us * 1e-6;
  }
  return t;
}

double slowest(const PipelineTimes& t) {
  double s = 0;
  for (const StageCost& c : t.stages) s = std::max(s, c.seconds());
  return s;
}

double through(const PipelineTimes& t) {  // one step from the first stage to the last, and the tokens back
  double s = 0;
  for (const StageCost& c : t.stages) s += c.seconds();
  return s + static_cast<double>(t.stages.size() - 1) * t.send_s + t.return_s;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Time for one replica to prefill `batch` prompts: steps of up to max_tokens_per_step tokens, pipelined.
double prefill_batch_seconds(const ModelConfig& c, const HardwareProfile& hw, int tp, int pp, int64_t batch,
                             const PlanRequest& r) {
  const int64_t T = r.memory.limits.max_tokens_per_step;
  std::vector<SeqShape> seqs;
  if (r.isl <= T)
    seqs.assign(static_cast<size_t>(std::min(batch, T / r.isl)), SeqShape{r.isl, 0});
  else
    seqs.push_back({T, r.isl / 2});
  int64_t step_tokens = 0;
  for (const SeqShape& s : seqs) step_tokens += s.new_tokens;
  const int64_t steps = ceil_div(batch * r.isl, step_tokens);
  const PipelineTimes t = stage_costs(c, hw, tp, pp, seqs, r);
  const double in_flight = static_cast<double>(std::min<int64_t>(pp, steps));
  return static_cast<double>(steps) * std::max(slowest(t) + t.send_s, through(t) / in_flight);
}

}  // namespace

Breakdown decode_step(const ModelConfig& c, const HardwareProfile& hw, int tp, int pp, int64_t batch, int64_t context,
                      const PlanRequest& r) {
  // Up to pp plans in flight (parallel/pipeline_executor.h): the batch splits into m micro-batches.
  const int64_t m = std::min<int64_t>(pp, batch), per_micro = ceil_div(batch, m);
  const PipelineTimes t = stage_costs(c, hw, tp, pp, std::vector<SeqShape>(static_cast<size_t>(per_micro), {1, context}), r);
  const double slow = slowest(t);
  const double period = std::max(static_cast<double>(m) * (slow + t.send_s), through(t));
  Breakdown b;
  for (const StageCost& s : t.stages)
    if (s.seconds() == slow) {
      b.add(s.breakdown, static_cast<double>(m));
      break;
    }
  b[Term::pipeline] += period - static_cast<double>(m) * slow;  // idle stages, sends, the tokens' way back
  return b;
}

double prefill_latency(const ModelConfig& c, const HardwareProfile& hw, int tp, int pp, int64_t isl,
                       const PlanRequest& r) {
  double s = 0;
  for (int64_t done = 0; done < isl; done += r.memory.limits.max_tokens_per_step) {
    const int64_t chunk = std::min(r.memory.limits.max_tokens_per_step, isl - done);
    s += through(stage_costs(c, hw, tp, pp, {SeqShape{chunk, done}}, r));
  }
  return s;
}

LayoutResult evaluate_layout(const ModelConfig& c, const HardwareProfile& hw, int tp, int pp, const PlanRequest& r) {
  LayoutResult L;
  L.tp = tp;
  L.pp = pp;
  L.dp = std::max(1, r.gpus / (tp * pp));
  const std::vector<int64_t> bounds = parallel::pipeline_layer_bounds(c.num_layers, pp, {});
  L.kv_tokens = INT64_MAX;
  for (int k = 0; k < pp; ++k) {  // report the stage that does not fit, else the one with the most in use
    const RankMemory m = rank_memory(c, tp, bounds[k], bounds[k + 1], hw, r.memory);
    const auto in_use = [](const RankMemory& x) { return x.weight_bytes + x.workspace_bytes(); };
    if (k == 0 || (L.memory.fits && (!m.fits || in_use(m) > in_use(L.memory)))) L.memory = m;
    L.kv_tokens = std::min(L.kv_tokens, m.kv_tokens);
  }
  L.fits = L.memory.fits;
  if (!L.fits) {
    L.kv_tokens = 0;
    L.note = "does not fit: " + L.memory.why_not;
    return L;
  }
  const int64_t block = r.memory.block_size;
  const int64_t per_seq = ceil_div(r.isl + r.osl, block) * block;
  const int64_t max_batch = std::min<int64_t>(r.memory.limits.max_seqs, L.kv_tokens / per_seq);
  const int64_t context = r.isl + r.osl / 2;  // the average decode step's context
  auto tpot = [&](int64_t b) { return decode_step(c, hw, tp, pp, b, context, r).total(); };
  // Output tokens/s of the replicas running `b` requests each: their prefill, then osl - 1 decode steps.
  auto tokens_per_s = [&](int64_t b, double decode_s) {
    const double total = prefill_batch_seconds(c, hw, tp, pp, b, r) + static_cast<double>(r.osl - 1) * decode_s;
    return L.dp * static_cast<double>(b * r.osl) / total;
  };
  auto rate_of = [&](int64_t b) { return tokens_per_s(b, tpot(b)) / static_cast<double>(r.osl); };
  if (max_batch < 1) {
    L.fits = false;
    L.note = "does not fit: the KV cache (" + std::to_string(L.kv_tokens) + " tokens) holds no sequence of " +
             std::to_string(r.isl + r.osl) + " tokens";
    return L;
  }
  if (r.batch) {
    L.batch = *r.batch;
    if (L.batch > max_batch) {
      L.fits = false;
      L.note = "does not fit: the KV cache holds " + std::to_string(max_batch) + " sequences of " +
               std::to_string(r.isl + r.osl) + " tokens, not " + std::to_string(L.batch);
    }
  } else if (r.rate) {
    L.batch = max_batch;
    for (int64_t b = 1; b <= max_batch; ++b)
      if (rate_of(b) >= *r.rate) {
        L.batch = b;
        break;
      }
    if (rate_of(L.batch) < *r.rate) {
      char text[96];
      std::snprintf(text, sizeof text, "sustains only %.3g requests/s", rate_of(L.batch));
      L.note = text;
    }
  } else if (r.objective == "latency") {
    L.batch = 1;
  } else {
    L.batch = max_batch;
    if (r.latency_slo_ms) {  // the time per output token grows with the batch: the largest batch within the SLO
      int64_t lo = 1, hi = max_batch;
      while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (tpot(mid) * 1e3 <= *r.latency_slo_ms) lo = mid; else hi = mid - 1;
      }
      L.batch = lo;
    }
  }
  L.decode = decode_step(c, hw, tp, pp, L.batch, context, r);
  L.decode_step_s = L.decode.total();
  L.bottleneck = L.decode.largest();
  L.prefill_s = prefill_latency(c, hw, tp, pp, r.isl, r);
  L.prefill_batch_s = prefill_batch_seconds(c, hw, tp, pp, L.batch, r);
  L.output_tokens_per_s = tokens_per_s(L.batch, L.decode_step_s);
  if (L.note.empty() && r.latency_slo_ms && L.decode_step_s * 1e3 > *r.latency_slo_ms)
    L.note = "time per output token above the SLO";
  return L;
}

std::vector<LayoutResult> plan_layouts(const ModelConfig& c, const HardwareProfile& hw, const PlanRequest& r) {
  LATTICE_CHECK(r.gpus >= 1, "--gpus must be >= 1, got ", r.gpus);
  std::vector<LayoutResult> out;
  for (int tp = 1; tp <= r.gpus; tp *= 2) {
    const bool splits = c.num_heads % tp == 0 && c.intermediate_size % tp == 0 && c.vocab_size % tp == 0 &&
                        (c.num_kv_heads % tp == 0 || tp % c.num_kv_heads == 0);
    if (!splits) continue;
    for (int pp = 1; tp * pp <= r.gpus && pp <= c.num_layers; pp *= 2) out.push_back(evaluate_layout(c, hw, tp, pp, r));
  }
  return out;
}

int recommend(const std::vector<LayoutResult>& layouts, const std::string& objective) {
  LATTICE_CHECK(objective == "throughput" || objective == "latency", "--objective must be throughput or latency, got '",
                objective, "'");
  int best = -1;
  for (int i = 0; i < static_cast<int>(layouts.size()); ++i) {
    const LayoutResult& l = layouts[i];
    if (!l.fits || !l.note.empty()) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const LayoutResult& b = layouts[best];
    const bool better = objective == "throughput"
                            ? l.output_tokens_per_s > b.output_tokens_per_s
                            : l.decode_step_s < b.decode_step_s ||
                                  (l.decode_step_s == b.decode_step_s && l.prefill_s < b.prefill_s);
    if (better) best = i;
  }
  return best;
}

nlohmann::ordered_json layout_json(const LayoutResult& l) {
  constexpr double GiB = 1 << 30;
  nlohmann::ordered_json j = {{"tp", l.tp}, {"pp", l.pp}, {"dp", l.dp}, {"batch", l.batch}, {"kv_tokens", l.kv_tokens},
                              {"fits", l.fits}, {"note", l.note}};
  j["memory_gib"] = {{"weights", l.memory.weight_bytes / GiB}, {"kv", l.memory.kv_bytes / GiB},
                     {"workspace", l.memory.workspace_bytes() / GiB}, {"total", l.memory.total_bytes() / GiB}};
  if (!l.fits) return j;
  j["decode_step_ms"] = l.decode_step_s * 1e3;
  j["tpot_ms"] = l.decode_step_s * 1e3;
  j["prefill_ms"] = l.prefill_s * 1e3;
  j["ttft_ms"] = l.prefill_s * 1e3;
  j["prefill_batch_ms"] = l.prefill_batch_s * 1e3;
  j["output_tokens_per_s"] = l.output_tokens_per_s;
  j["bottleneck"] = term_name(l.bottleneck);
  for (int t = 0; t < kNumTerms; ++t) j["decode_breakdown_ms"][term_name(static_cast<Term>(t))] = l.decode.seconds[t] * 1e3;
  return j;
}

}  // namespace lattice::planner
