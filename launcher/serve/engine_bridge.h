// The bridge between front-end threads (HTTP, gRPC) and the serve loop on rank 0's main thread.
//
// A handler submits the n choices of one API request and gets a RequestStream; the serve loop calls
// on_event / on_reject (on its own thread, quickly), which push into that stream; the handler waits on it.
// The number of unfinished sequences is bounded: past the bound, submit throws Overloaded (HTTP 429)
// instead of queueing without limit. Latency histograms (time to first token, inter-token, end to end)
// and token counters are recorded here, where the timestamps are.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/scheduler/request.h"
#include "engine/scheduler/request_inbox.h"
#include "launcher/serve/metrics.h"

namespace lattice::serve {

// One event of one choice: a token, the end of the choice (finish != none), or an error (error set): a
// rejection of the request (status 400) or a failure of the engine (500).
struct ChoiceEvent {
  int index = 0;
  std::optional<SampledToken> token;
  FinishReason finish = FinishReason::none;
  std::string error;
  int status = 400;
  int64_t cached_tokens = 0;  // with a token: prompt tokens the engine took from its prefix cache
};

class RequestStream {
 public:
  // `live` (optional) counts the streams alive: incremented here, decremented on destruction.
  explicit RequestStream(std::vector<int64_t> ids, std::atomic<int64_t>* live = nullptr)
      : ids_(std::move(ids)), open_(static_cast<int>(ids_.size())), live_(live) {
    if (live_) ++*live_;
  }
  ~RequestStream() {
    if (live_) --*live_;
  }
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;
  // The next event, or nullopt after `timeout` (so that a handler can check its client in between).
  std::optional<ChoiceEvent> next(std::chrono::milliseconds timeout);
  const std::vector<int64_t>& ids() const { return ids_; }
  // True once every choice has ended and its events have all been taken.
  bool drained();

 private:
  friend class EngineBridge;
  void push(ChoiceEvent event);

  std::vector<int64_t> ids_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<ChoiceEvent> events_;
  int open_;  // choices that have not ended
  std::atomic<int64_t>* live_;
};

struct Overloaded : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The engine has failed (an error, a stalled or dead rank): new requests get 503 until the process exits.
struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class EngineBridge {
 public:
  EngineBridge(RequestInbox& inbox, Metrics& metrics, int64_t max_pending);

  // Assigns fresh ids to `choices` and queues them; throws Overloaded when the pending sequences would
  // exceed the bound, or when the server is shutting down; Unavailable after fail_all.
  std::shared_ptr<RequestStream> submit(std::vector<Request> choices);
  // Cancels every choice of the stream that has not ended (client gone, stop string matched, shutdown).
  void cancel(const RequestStream& stream);
  void cancel_choice(const RequestStream& stream, int index);

  // Serve-thread callbacks.
  void on_event(const TokenEvent& event);
  void on_reject(int64_t id, const std::string& message);
  // Ends every unfinished sequence with `message` (a 500 error event: the engine failed) and refuses new
  // ones for good. Any thread (the serve loop, the step watchdog, the signal watcher); the first message stays.
  void fail_all(const std::string& message);
  // The first fail_all message, once the engine has failed.
  std::optional<std::string> failure() const;

  void set_ready() { ready_ = true; }
  bool ready() const { return ready_; }
  // Refuses new requests (shutdown); those already queued still finish.
  void stop_accepting() { accepting_ = false; }
  bool accepting() const { return accepting_; }
  int64_t pending() const;
  // Waits until every stream handed out has been released by its front end (the last frames of a response
  // are written before that), or `timeout` passes; returns whether they all were.
  bool wait_streams_released(std::chrono::milliseconds timeout) const;

 private:
  struct Choice {
    std::weak_ptr<RequestStream> stream;
    int index;
    std::chrono::steady_clock::time_point submitted, last_token;
    int64_t tokens = 0;
  };
  void end_choice(std::map<int64_t, Choice>::iterator it, ChoiceEvent event);

  RequestInbox& inbox_;
  Metrics& metrics_;
  const int64_t max_pending_;
  std::atomic<bool> ready_{false}, accepting_{true};
  std::atomic<int64_t> next_id_{1};
  std::atomic<int64_t> live_streams_{0};
  mutable std::mutex mutex_;
  std::map<int64_t, Choice> choices_;  // unfinished sequences by request id
  std::optional<std::string> failure_;
};

// Declares the serving metrics that the bridge, the front ends and the serve loop update.
void describe_serving_metrics(Metrics& metrics);

}  // namespace lattice::serve
