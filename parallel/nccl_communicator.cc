#include "parallel/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <string>
#include <thread>

#include "kernels/cuda/cuda_check.h"
#include "parallel/event_interval_timer.h"
#include "parallel/mpi_check.h"

// Routes an NCCL failure to lattice's error helper with the call, file:line and NCCL's messages.
// ncclInProgress is not a failure: a non-blocking communicator is still working (see NcclCommunicator::wait_for_comm).
#define NCCL_CHECK(call)                                                                                   \
  do {                                                                                                     \
    const ncclResult_t nccl_status_ = (call);                                                              \
    if (nccl_status_ != ncclSuccess && nccl_status_ != ncclInProgress)                                     \
      LATTICE_THROW(#call, " failed: ", ncclGetErrorString(nccl_status_), " (", ncclGetLastError(nullptr), ")"); \
  } while (0)

namespace lattice::parallel {

namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return ncclFloat32;
    case DType::f16: return ncclFloat16;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::u8: return ncclUint8;
  }
  LATTICE_THROW("no NCCL type for ", dtype_name(dtype));
}

// CUDA events on the communicator's stream (timing on: default flags), for EventIntervalTimer.
struct StreamEvents {
  using Event = cudaEvent_t;
  cudaStream_t stream = nullptr;

  Event create() {
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreate(&e));
    return e;
  }
  void destroy(Event e) { cudaEventDestroy(e); }
  void record(Event e) { CUDA_CHECK(cudaEventRecord(e, stream)); }
  double seconds_between(Event start, Event end) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, end));
    return ms / 1e3;
  }
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, const NcclOptions& options)
      : device_(options.device),
        stream_(options.stream),
        timeout_(options.timeout_seconds),
        label_(options.label),
        timer_(StreamEvents{options.stream}) {
    MPI_CHECK(MPI_Comm_rank(comm, &rank_));
    MPI_CHECK(MPI_Comm_size(comm, &size_));
    // Rank 0 sends a status with the id, so that its failure ends every rank's set-up instead of leaving the
    // others in MPI_Bcast.
    struct {
      int ok;
      ncclUniqueId id;
    } message{};
    std::string failure;
    if (rank_ == 0) {
      const ncclResult_t got = ncclGetUniqueId(&message.id);
      message.ok = got == ncclSuccess;
      if (!message.ok) failure = ncclGetErrorString(got);
    }
    MPI_CHECK(MPI_Bcast(&message, sizeof(message), MPI_BYTE, 0, comm));
    LATTICE_CHECK(message.ok, who(), ": rank 0 could not create an ncclUniqueId",
                  failure.empty() ? "" : ": ", failure);

    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaMalloc(&barrier_word_, sizeof(float)));
    try {
      ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
      config.blocking = 0;
      NCCL_CHECK(ncclCommInitRankConfig(&comm_, size_, message.id, rank_, &config));
      wait_for_comm("ncclCommInitRankConfig");
    } catch (...) {  // the destructor does not run for a constructor that throws
      if (comm_) ncclCommAbort(comm_);
      cudaFree(barrier_word_);
      throw;
    }
  }

  ~NcclCommunicator() override {
    if (barrier_word_) cudaFree(barrier_word_);
    if (!comm_) return;  // aborted after an error
    // Finalize flushes outstanding work; bounded by the timeout, and abort instead when it fails.
    const ncclResult_t finalize = ncclCommFinalize(comm_);
    bool clean = finalize == ncclSuccess || finalize == ncclInProgress;
    const auto start = std::chrono::steady_clock::now();
    ncclResult_t state = ncclInProgress;
    while (clean && state == ncclInProgress) {
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) clean = false;
      if (elapsed(start) > timeout_) clean = false;
      if (state == ncclInProgress) std::this_thread::yield();
    }
    if (clean && state == ncclSuccess)
      ncclCommDestroy(comm_);
    else
      ncclCommAbort(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }

  // One ncclAllReduce, in place, in the tensor's dtype (the activations' bf16 on a GPU), on the compute stream.
  void all_reduce_sum(Tensor& t) override {
    require_device(t, "all_reduce_sum");
    LATTICE_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16,
                  "all_reduce_sum needs f32, bf16 or f16, got ", t.describe());
    timed([&] {
      enqueue("ncclAllReduce",
              ncclAllReduce(t.raw(), t.raw(), count(t), nccl_type(t.dtype()), ncclSum, comm(), stream_));
    });
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    require_device(in, "all_gather");
    require_device(out, "all_gather");
    LATTICE_CHECK(out.dtype() == in.dtype() && out.numel() == in.numel() * size_, "all_gather: out ",
                  out.describe(), " must hold ", size_, " x ", in.describe());
    timed([&] {
      enqueue("ncclAllGather", ncclAllGather(in.raw(), out.raw(), count(in), nccl_type(in.dtype()), comm(), stream_));
    });
  }
  // NCCL has no gather: the root receives from every peer in one group and copies its own part on the stream.
  void gather(const Tensor& in, Tensor& out, int root) override {
    require_device(in, "gather");
    LATTICE_CHECK(root >= 0 && root < size_, "gather root ", root, " is outside a group of ", size_);
    const ncclDataType_t type = nccl_type(in.dtype());
    if (rank_ != root) {
      timed([&] { enqueue("ncclSend (gather)", ncclSend(in.raw(), count(in), type, root, comm(), stream_)); });
      return;
    }
    require_device(out, "gather");
    LATTICE_CHECK(out.dtype() == in.dtype() && out.numel() == in.numel() * size_, "gather: out ", out.describe(),
                  " must hold ", size_, " x ", in.describe());
    auto* slots = static_cast<std::byte*>(out.raw());
    if (slots + root * in.nbytes() != in.raw())
      CUDA_CHECK(cudaMemcpyAsync(slots + root * in.nbytes(), in.raw(), in.nbytes(), cudaMemcpyDeviceToDevice, stream_));
    ncclComm_t c = comm();
    timed([&] {
      enqueue("ncclGroupStart (gather)", ncclGroupStart());
      for (int peer = 0; peer < size_; ++peer) {
        if (peer == root) continue;
        const ncclResult_t got = ncclRecv(slots + peer * in.nbytes(), count(in), type, peer, c, stream_);
        if (got != ncclSuccess && got != ncclInProgress) {
          ncclGroupEnd();
          fail("ncclRecv (gather)", ncclGetErrorString(got));
        }
      }
      enqueue("ncclGroupEnd (gather)", ncclGroupEnd());
    });
  }
  void broadcast(Tensor& t, int root) override {
    require_device(t, "broadcast");
    LATTICE_CHECK(root >= 0 && root < size_, "broadcast root ", root, " is outside a group of ", size_);
    timed([&] {
      enqueue("ncclBroadcast", ncclBroadcast(t.raw(), t.raw(), count(t), nccl_type(t.dtype()), root, comm(), stream_));
    });
  }
  void send(const Tensor& t, int peer) override {
    require_device(t, "send");
    require_peer(peer);
    timed([&] { enqueue("ncclSend", ncclSend(t.raw(), count(t), nccl_type(t.dtype()), peer, comm(), stream_)); });
  }
  void recv(Tensor& t, int peer) override {
    require_device(t, "recv");
    require_peer(peer);
    // NCCL cannot report a size mismatch: both sides must agree on the shape (the step plan carries it).
    timed([&] { enqueue("ncclRecv", ncclRecv(t.raw(), count(t), nccl_type(t.dtype()), peer, comm(), stream_)); });
  }
  // A host rendezvous: an all-reduce of one word, waited for.
  void barrier() override {
    timed([&] {
      enqueue("ncclAllReduce (barrier)",
              ncclAllReduce(barrier_word_, barrier_word_, 1, ncclFloat32, ncclSum, comm(), stream_));
    });
    wait_for_stream("barrier");
  }
  void synchronize() override { wait_for_stream("synchronize"); }
  // The operations' device time (CUDA events around each on the stream), up to the last synchronize() or
  // barrier(); calls captured in a CUDA graph are not timed (their replays do not pass through here).
  double seconds() const override { return timer_.seconds(); }

 private:
  static double elapsed(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  ncclComm_t comm() const {
    LATTICE_CHECK(comm_ != nullptr, who(), ": the communicator was aborted after an earlier error; the job must end");
    return comm_;
  }

  // "nccl tp group of world rank 3, rank 1/2"
  std::string who() const {
    return "nccl " + label_ + ", rank " + std::to_string(rank_) + "/" + std::to_string(size_);
  }

  size_t count(const Tensor& t) const { return static_cast<size_t>(t.numel()); }

  void require_device(const Tensor& t, const char* op) const {
    LATTICE_CHECK(t.device() == Device::cuda(device_), "nccl ", op, " on ", t.describe(),
                  ": this rank's communicator works on cuda:", device_);
  }
  void require_peer(int peer) const {
    LATTICE_CHECK(peer >= 0 && peer < size_ && peer != rank_, who(), ": peer ", peer,
                  " is not another rank of a group of ", size_);
  }

  // Aborts the communicator (so that no later call can hang on it) and throws with the rank and the reason.
  [[noreturn]] void fail(const char* what, const std::string& reason) {
    const std::string detail = comm_ ? ncclGetLastError(comm_) : "";
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    LATTICE_THROW(who(), ": ", what, " failed: ", reason,
                  detail.empty() ? "" : " (", detail, detail.empty() ? "" : ")");
  }

  // Runs `enqueue_call` between two events on the stream. Not while the stream is being captured into a CUDA
  // graph: plain event records are not graph nodes, and the graph's replays would not be seen anyway.
  template <class F>
  void timed(F&& enqueue_call) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(stream_, &capture));
    const bool on = capture == cudaStreamCaptureStatusNone;
    if (on) timer_.start();
    enqueue_call();
    if (on) timer_.stop();
  }

  // Waits until the non-blocking communicator has finished its pending host-side work (set-up, enqueueing).
  void wait_for_comm(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
      if (query != ncclSuccess) fail(what, std::string("ncclCommGetAsyncError: ") + ncclGetErrorString(query));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
      if (elapsed(start) > timeout_) fail(what, "no progress within " + std::to_string(timeout_) + " s");
      std::this_thread::yield();
    }
  }

  // Checks the result of an enqueueing call; a non-blocking communicator may still be enqueueing
  // (ncclInProgress), which is host-side work: wait for that, never for the stream.
  void enqueue(const char* what, ncclResult_t result) {
    if (result != ncclSuccess && result != ncclInProgress) fail(what, ncclGetErrorString(result));
    if (result == ncclInProgress) wait_for_comm(what);
  }

  // Waits for everything queued on the stream (this communicator's operations and the work before them),
  // polling for asynchronous NCCL errors (a dead or stuck peer) and giving up after the timeout.
  void wait_for_stream(const char* what) {
    ncclComm_t c = comm();
    const auto start = std::chrono::steady_clock::now();
    for (int polls = 0;; ++polls) {
      const cudaError_t status = cudaStreamQuery(stream_);
      if (status == cudaSuccess) {
        timer_.collect();  // every timed operation has run
        return;
      }
      if (status != cudaErrorNotReady) fail(what, std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status));
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = ncclCommGetAsyncError(c, &state);
      if (query != ncclSuccess) fail(what, std::string("ncclCommGetAsyncError: ") + ncclGetErrorString(query));
      if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
      if (elapsed(start) > timeout_)
        fail(what, "the stream is not done after " + std::to_string(timeout_) + " s (a peer failed or stalled)");
      // Spin briefly for latency, then stop burning the core.
      if (polls < 1000)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  int device_;
  cudaStream_t stream_;
  double timeout_;
  std::string label_;
  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  float* barrier_word_ = nullptr;
  EventIntervalTimer<StreamEvents> timer_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, const NcclOptions& options) {
  return std::make_unique<NcclCommunicator>(comm, options);
}

}  // namespace lattice::parallel
