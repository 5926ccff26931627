#include "parallel/plan_codec.h"

#include "engine/core/error.h"
#include "parallel/step_plan.pb.h"

namespace lattice::parallel {

std::string encode_plan(const StepPlan& plan) {
  wire::StepPlan w;
  w.set_step_id(plan.step_id);
  for (size_t i = 0; i < plan.batch.seqs.size(); ++i) {
    const SequenceStep& s = plan.batch.seqs[i];
    const SequenceSampling& sm = plan.sampling.at(i);
    wire::SequencePlan* ws = w.add_seqs();
    ws->set_seq_id(s.seq_id);
    ws->mutable_tokens()->Add(s.tokens.begin(), s.tokens.end());
    ws->set_start_pos(s.start_pos);
    ws->mutable_block_table()->Add(s.block_table.begin(), s.block_table.end());
    ws->set_all_logits(s.all_logits);
    ws->set_sample(sm.sample);
    ws->set_prompt_len(sm.prompt_len);
    ws->mutable_context_prefix()->Add(sm.context_prefix.begin(), sm.context_prefix.end());
    wire::SamplingParams* p = ws->mutable_sampling();
    p->set_temperature(sm.params.temperature);
    p->set_top_k(sm.params.top_k);
    p->set_top_p(sm.params.top_p);
    p->set_min_p(sm.params.min_p);
    p->set_repetition_penalty(sm.params.repetition_penalty);
    p->set_presence_penalty(sm.params.presence_penalty);
    p->set_frequency_penalty(sm.params.frequency_penalty);
    p->set_seed(sm.seed);
    p->set_logprobs(sm.params.logprobs);
  }
  w.mutable_released()->Add(plan.released.begin(), plan.released.end());
  return w.SerializeAsString();
}

std::string encode_shutdown() {
  wire::StepPlan w;
  w.set_shutdown(true);
  return w.SerializeAsString();
}

std::string encode_stage_time(const StageTime& time) {
  wire::StepPlan w;
  wire::StageTime* t = w.add_stage_times();
  t->set_rank(time.rank);
  t->set_seconds(time.seconds);
  return w.SerializeAsString();
}

DecodedPlan decode_plan(const std::string& bytes) {
  wire::StepPlan w;
  LATTICE_CHECK(w.ParseFromString(bytes), "corrupt step plan (", bytes.size(), " bytes)");
  DecodedPlan out;
  out.shutdown = w.shutdown();
  StepPlan& plan = out.plan;
  plan.step_id = w.step_id();
  for (const wire::SequencePlan& ws : w.seqs()) {
    SequenceStep s;
    s.seq_id = ws.seq_id();
    s.tokens.assign(ws.tokens().begin(), ws.tokens().end());
    s.start_pos = ws.start_pos();
    s.block_table.assign(ws.block_table().begin(), ws.block_table().end());
    s.all_logits = ws.all_logits();
    plan.batch.seqs.push_back(std::move(s));
    SequenceSampling sm;
    sm.sample = ws.sample();
    sm.prompt_len = ws.prompt_len();
    sm.context_prefix.assign(ws.context_prefix().begin(), ws.context_prefix().end());
    const wire::SamplingParams& p = ws.sampling();
    sm.params.temperature = p.temperature();
    sm.params.top_k = p.top_k();
    sm.params.top_p = p.top_p();
    sm.params.min_p = p.min_p();
    sm.params.repetition_penalty = p.repetition_penalty();
    sm.params.presence_penalty = p.presence_penalty();
    sm.params.frequency_penalty = p.frequency_penalty();
    sm.params.logprobs = p.logprobs();
    sm.seed = p.seed();
    plan.sampling.push_back(sm);
  }
  plan.released.assign(w.released().begin(), w.released().end());
  for (const wire::StageTime& t : w.stage_times()) out.stage_times.push_back({t.rank(), t.seconds()});
  return out;
}

std::string encode_result(const StepResult& result) {
  wire::StepResult w;
  w.set_step_id(result.step_id);
  for (const SampledToken& t : result.tokens) {
    wire::SampledToken* wt = w.add_tokens();
    wt->set_token(t.token);
    wt->set_logprob(t.logprob);
    wt->set_error(t.error);
    for (const TokenLogprob& lp : t.top) {
      wire::TokenLogprob* wl = wt->add_top();
      wl->set_token(lp.token);
      wl->set_logprob(lp.logprob);
    }
  }
  for (const StageTime& t : result.stage_times) {
    wire::StageTime* wt = w.add_stage_times();
    wt->set_rank(t.rank);
    wt->set_seconds(t.seconds);
  }
  return w.SerializeAsString();
}

StepResult decode_result(const std::string& bytes) {
  wire::StepResult w;
  LATTICE_CHECK(w.ParseFromString(bytes), "corrupt step result (", bytes.size(), " bytes)");
  StepResult r;
  r.step_id = w.step_id();
  for (const wire::SampledToken& wt : w.tokens()) {
    SampledToken t;
    t.token = wt.token();
    t.logprob = wt.logprob();
    t.error = wt.error();
    for (const wire::TokenLogprob& wl : wt.top()) t.top.push_back({wl.token(), wl.logprob()});
    r.tokens.push_back(std::move(t));
  }
  for (const wire::StageTime& t : w.stage_times()) r.stage_times.push_back({t.rank(), t.seconds()});
  return r;
}

}  // namespace lattice::parallel
