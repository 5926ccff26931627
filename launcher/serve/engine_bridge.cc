#include "launcher/serve/engine_bridge.h"

#include <cstdio>
#include <thread>

namespace lattice::serve {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

std::optional<ChoiceEvent> RequestStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
  ChoiceEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

bool RequestStream::drained() {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_ == 0 && events_.empty();
}

void RequestStream::push(ChoiceEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (event.finish != FinishReason::none || !event.error.empty()) --open_;
    events_.push_back(std::move(event));
  }
  changed_.notify_all();
}

EngineBridge::EngineBridge(RequestInbox& inbox, Metrics& metrics, int64_t max_pending)
    : inbox_(inbox), metrics_(metrics), max_pending_(max_pending) {}

int64_t EngineBridge::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(choices_.size());
}

bool EngineBridge::wait_streams_released(std::chrono::milliseconds timeout) const {
  const Clock::time_point until = Clock::now() + timeout;
  while (live_streams_ > 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return live_streams_ == 0;
}

std::shared_ptr<RequestStream> EngineBridge::submit(std::vector<Request> choices) {
  std::vector<int64_t> ids;
  for (Request& r : choices) {
    r.id = next_id_++;
    ids.push_back(r.id);
  }
  auto stream = std::make_shared<RequestStream>(ids, &live_streams_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (failure_) throw Unavailable("the engine has failed: " + *failure_);
    if (!accepting_) throw Overloaded("the server is shutting down");
    const int64_t after = static_cast<int64_t>(choices_.size() + choices.size());
    if (after > max_pending_)
      throw Overloaded("the server has " + std::to_string(choices_.size()) + " sequences pending (limit " +
                       std::to_string(max_pending_) + "); retry later");
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < ids.size(); ++i) choices_[ids[i]] = Choice{stream, static_cast<int>(i), now, now, 0};
    metrics_.set("lattice_pending_sequences", static_cast<double>(choices_.size()));
  }
  for (Request& r : choices) {
    metrics_.add("lattice_prompt_tokens_total", {}, static_cast<double>(r.prompt.size()));
    inbox_.submit(std::move(r));
  }
  return stream;
}

void EngineBridge::cancel(const RequestStream& stream) {
  for (size_t i = 0; i < stream.ids().size(); ++i) cancel_choice(stream, static_cast<int>(i));
}

void EngineBridge::cancel_choice(const RequestStream& stream, int index) {
  const int64_t id = stream.ids().at(index);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!choices_.count(id)) return;  // already ended
  }
  inbox_.cancel(id);
}

void EngineBridge::end_choice(std::map<int64_t, Choice>::iterator it, ChoiceEvent event) {
  std::shared_ptr<RequestStream> stream = it->second.stream.lock();
  if (event.error.empty())
    metrics_.observe("lattice_e2e_request_latency_seconds", seconds_between(it->second.submitted, Clock::now()));
  choices_.erase(it);
  metrics_.set("lattice_pending_sequences", static_cast<double>(choices_.size()));
  if (stream) stream->push(std::move(event));
}

void EngineBridge::on_event(const TokenEvent& event) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = choices_.find(event.request_id);
  if (it == choices_.end()) return;
  Choice& c = it->second;
  if (event.finish == FinishReason::error) {  // the engine failed this sequence alone: a server error
    std::fprintf(stderr, "lattice serve: request %lld failed: %s\n", static_cast<long long>(event.request_id),
                 event.error.c_str());
    end_choice(it, ChoiceEvent{c.index, std::nullopt, FinishReason::none, event.error, 500});
    return;
  }
  ChoiceEvent out{c.index, event.token, event.finish, {}};
  out.cached_tokens = event.cached_tokens;
  if (event.token) {
    const Clock::time_point now = Clock::now();
    if (c.tokens == 0)
      metrics_.observe("lattice_time_to_first_token_seconds", seconds_between(c.submitted, now));
    else
      metrics_.observe("lattice_inter_token_latency_seconds", seconds_between(c.last_token, now));
    c.last_token = now;
    ++c.tokens;
    metrics_.add("lattice_generation_tokens_total");
  }
  if (event.finish != FinishReason::none) {
    end_choice(it, std::move(out));
    return;
  }
  if (std::shared_ptr<RequestStream> stream = c.stream.lock()) stream->push(std::move(out));
}

void EngineBridge::on_reject(int64_t id, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = choices_.find(id);
  if (it == choices_.end()) return;
  ChoiceEvent out{it->second.index, std::nullopt, FinishReason::none, message.empty() ? "rejected" : message};
  end_choice(it, std::move(out));
}

std::optional<std::string> EngineBridge::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_;
}

void EngineBridge::fail_all(const std::string& message) {
  accepting_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!failure_) failure_ = message;
  while (!choices_.empty()) end_choice(choices_.begin(), ChoiceEvent{choices_.begin()->second.index, std::nullopt, FinishReason::none, message, 500});
}

void describe_serving_metrics(Metrics& m) {
  using T = Metrics::Type;
  const std::vector<double> latency = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  m.describe("lattice_requests_total", T::counter, "HTTP and gRPC requests by endpoint and status code");
  m.describe("lattice_pending_sequences", T::gauge, "Sequences accepted and not finished (queued or running)");
  m.describe("lattice_queue_length", T::gauge, "Sequences waiting in the scheduler queue");
  m.describe("lattice_running_sequences", T::gauge, "Sequences admitted to the running batch");
  m.describe("lattice_waiting_sequences", T::gauge, "Sequences waiting for admission (queued or preempted)");
  m.describe("lattice_batch_size", T::histogram, "Sequences per engine step",
             {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  m.describe("lattice_prompt_tokens_total", T::counter, "Prompt tokens of accepted sequences");
  m.describe("lattice_generation_tokens_total", T::counter, "Tokens generated");
  m.describe("lattice_time_to_first_token_seconds", T::histogram, "From submission to the first token", latency);
  m.describe("lattice_inter_token_latency_seconds", T::histogram, "Between consecutive tokens of a sequence", latency);
  m.describe("lattice_e2e_request_latency_seconds", T::histogram, "From submission to a sequence's last event", latency);
  m.describe("lattice_kv_cache_usage_percent", T::gauge, "KV cache blocks in use, percent");
  m.describe("lattice_kv_cache_free_blocks", T::gauge, "KV cache blocks free");
  m.describe("lattice_preemptions_total", T::counter, "Sequences preempted (blocks freed, recomputed later)");
  m.describe("lattice_step_time_seconds", T::histogram, "Engine step time by rank: submit to result in one process; each pipeline stage's own part on a grid", latency);
  m.describe("lattice_ready", T::gauge, "1 once every rank has loaded the model");
  // Data-parallel replicas (--dp; one replica, "0", otherwise): the same gauges per replica, as families of their
  // own so that summing a family never counts a total twice.
  m.describe("lattice_replica_running_sequences", T::gauge, "Sequences in a replica's running batch, by replica");
  m.describe("lattice_replica_waiting_sequences", T::gauge, "Sequences waiting for admission on a replica, by replica");
  m.describe("lattice_replica_kv_cache_usage_percent", T::gauge, "A replica's KV cache blocks in use, percent, by replica");
  m.describe("lattice_replica_requests_total", T::counter, "Sequences the router gave each replica, by replica");
  for (const char* g : {"lattice_pending_sequences", "lattice_queue_length", "lattice_running_sequences",
                        "lattice_waiting_sequences", "lattice_kv_cache_usage_percent", "lattice_kv_cache_free_blocks",
                        "lattice_ready"})
    m.set(g, 0);
  m.add("lattice_prompt_tokens_total", {}, 0);
  m.add("lattice_generation_tokens_total", {}, 0);
  m.add("lattice_preemptions_total", {}, 0);
}

}  // namespace lattice::serve
