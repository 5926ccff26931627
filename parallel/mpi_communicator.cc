#include "parallel/mpi_communicator.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "kernels/cpu/convert.h"
#include "parallel/mpi_check.h"
#include "parallel/scoped_timer.h"

namespace lattice::parallel {

namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::f16:
    case DType::bf16: return MPI_UINT16_T;
  }
  LATTICE_THROW("no MPI type for ", dtype_name(dtype));
}

void require_host(const Tensor& t, const char* op) {
  LATTICE_CHECK(t.device().is_cpu(), "MPI ", op, " on ", t.describe(),
                ": GPU tensors go through the host-staged communicator (host_staged_communicator.h)");
}

int count_of(const Tensor& t) {
  LATTICE_CHECK(t.numel() <= INT32_MAX, "tensor ", t.describe(), " is too large for one MPI message");
  return static_cast<int>(t.numel());
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  void all_reduce_sum(Tensor& t) override {
    ScopedTimer timed(seconds_);
    require_host(t, "all_reduce");
    if (t.dtype() == DType::f32) {
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.raw(), count_of(t), MPI_FLOAT, MPI_SUM, comm_));
      return;
    }
    LATTICE_CHECK(t.dtype() == DType::bf16 || t.dtype() == DType::f16, "all_reduce_sum needs f32, bf16 or f16, got ",
                  t.describe());
    // Widen to f32, sum in f32 (MPI_Allreduce gives every rank the same sum) and round once per element.
    const int n = count_of(t);
    uint16_t* half = static_cast<uint16_t*>(t.raw());
    widened_.resize(static_cast<size_t>(n));
    if (t.dtype() == DType::bf16)
      kernels::cpu::bf16_to_f32(half, widened_.data(), n);
    else
      kernels::cpu::f16_to_f32(half, widened_.data(), n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, widened_.data(), n, MPI_FLOAT, MPI_SUM, comm_));
    for (int i = 0; i < n; ++i)
      half[i] = t.dtype() == DType::bf16 ? kernels::cpu::f32_to_bf16(widened_[i]) : kernels::cpu::f32_to_f16(widened_[i]);
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    ScopedTimer timed(seconds_);
    require_host(in, "all_gather");
    require_host(out, "all_gather");
    LATTICE_CHECK(out.dtype() == in.dtype() && out.numel() == in.numel() * size_, "all_gather: out ",
                  out.describe(), " must hold ", size_, " x ", in.describe());
    MPI_CHECK(MPI_Allgather(in.raw(), count_of(in), mpi_type(in.dtype()), out.raw(), count_of(in),
                            mpi_type(in.dtype()), comm_));
  }
  void gather(const Tensor& in, Tensor& out, int root) override {
    ScopedTimer timed(seconds_);
    require_root(root, "gather");
    require_host(in, "gather");
    if (rank_ == root) {
      require_host(out, "gather");
      LATTICE_CHECK(out.dtype() == in.dtype() && out.numel() == in.numel() * size_, "gather: out ", out.describe(),
                    " must hold ", size_, " x ", in.describe());
    }
    MPI_CHECK(MPI_Gather(in.raw(), count_of(in), mpi_type(in.dtype()), rank_ == root ? out.raw() : nullptr,
                         count_of(in), mpi_type(in.dtype()), root, comm_));
  }
  void broadcast(Tensor& t, int root) override {
    ScopedTimer timed(seconds_);
    require_root(root, "broadcast");
    require_host(t, "broadcast");
    MPI_CHECK(MPI_Bcast(t.raw(), count_of(t), mpi_type(t.dtype()), root, comm_));
  }
  void send(const Tensor& t, int peer) override {
    ScopedTimer timed(seconds_);
    require_host(t, "send");
    MPI_CHECK(MPI_Send(t.raw(), count_of(t), mpi_type(t.dtype()), peer, 0, comm_));
  }
  void recv(Tensor& t, int peer) override {
    ScopedTimer timed(seconds_);
    require_host(t, "recv");
    MPI_Status status;
    MPI_CHECK(MPI_Recv(t.raw(), count_of(t), mpi_type(t.dtype()), peer, 0, comm_, &status));
    int got = 0;
    MPI_Get_count(&status, mpi_type(t.dtype()), &got);
    LATTICE_CHECK(got == count_of(t), "recv from peer ", peer, ": expected ", t.describe(), ", got ", got,
                  " elements");
  }
  void barrier() override {
    ScopedTimer timed(seconds_);
    MPI_CHECK(MPI_Barrier(comm_));
  }
  void synchronize() override {}  // every call has completed by the time it returns
  double seconds() const override { return seconds_; }

 private:
  void require_root(int root, const char* op) const {
    LATTICE_CHECK(root >= 0 && root < size_, op, " root ", root, " is outside a group of ", size_);
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<float> widened_;  // bf16 / f16 all-reduce in f32
  double seconds_ = 0;
};

class MpiControlChannel final : public ControlChannel {
 public:
  MpiControlChannel(MPI_Comm world, MPI_Comm tp_group) : world_(world), tp_(tp_group) {}
  ~MpiControlChannel() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (auto& [bytes, request] : posted_) MPI_Wait(&request, MPI_STATUS_IGNORE);
    MPI_Comm_free(&tp_);
  }

  void broadcast_tp(std::string& bytes, int root) override {
    ScopedTimer timed(seconds_);
    int64_t len = static_cast<int64_t>(bytes.size());
    MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT64_T, root, tp_));
    bytes.resize(static_cast<size_t>(len));
    MPI_CHECK(MPI_Bcast(bytes.data(), static_cast<int>(len), MPI_BYTE, root, tp_));
  }
  void send(const std::string& bytes, int world_rank, int tag) override {
    ScopedTimer timed(seconds_);
    MPI_CHECK(MPI_Send(bytes.data(), message_size(bytes), MPI_BYTE, world_rank, tag, world_));
  }
  void post(std::string bytes, int world_rank, int tag) override {
    ScopedTimer timed(seconds_);
    reap();
    posted_.emplace_back(std::move(bytes), MPI_REQUEST_NULL);
    auto& [data, request] = posted_.back();
    MPI_CHECK(MPI_Isend(data.data(), message_size(data), MPI_BYTE, world_rank, tag, world_, &request));
  }
  std::string recv(int world_rank, int tag) override {
    ScopedTimer timed(seconds_);
    MPI_Status status;
    MPI_CHECK(MPI_Probe(world_rank, tag, world_, &status));
    int len = 0;
    MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &len));
    std::string bytes(static_cast<size_t>(len), '\0');
    MPI_CHECK(MPI_Recv(bytes.data(), len, MPI_BYTE, world_rank, tag, world_, MPI_STATUS_IGNORE));
    return bytes;
  }
  bool probe(int world_rank, int tag) override {
    ScopedTimer timed(seconds_);
    reap();
    int flag = 0;
    MPI_CHECK(MPI_Iprobe(world_rank, tag, world_, &flag, MPI_STATUS_IGNORE));
    return flag != 0;
  }
  std::optional<std::string> try_recv(int world_rank, int tag, int* source) override {
    ScopedTimer timed(seconds_);
    return poll(world_rank, tag, source);
  }
  std::string recv_with(int world_rank, int tag, int side_tag,
                        const std::function<void(int source, const std::string& bytes)>& side) override {
    ScopedTimer timed(seconds_);
    while (true) {
      int source = 0;
      while (std::optional<std::string> bytes = poll(kAnyRank, side_tag, &source)) side(source, *bytes);
      if (std::optional<std::string> bytes = poll(world_rank, tag, nullptr)) return std::move(*bytes);
      std::this_thread::yield();
    }
  }
  int64_t world_min(int64_t value) override {
    ScopedTimer timed(seconds_);
    int64_t out = value;
    MPI_CHECK(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_MIN, world_));
    return out;
  }
  double seconds() const override { return seconds_; }

 private:
  static int message_size(const std::string& bytes) {
    LATTICE_CHECK(bytes.size() <= INT32_MAX, "control message of ", bytes.size(), " bytes is too large");
    return static_cast<int>(bytes.size());
  }
  // A message with `tag` from `world_rank` (or kAnyRank) that has arrived, or nullopt.
  std::optional<std::string> poll(int world_rank, int tag, int* source) {
    MPI_Status status;
    int arrived = 0;
    MPI_CHECK(MPI_Iprobe(world_rank == kAnyRank ? MPI_ANY_SOURCE : world_rank, tag, world_, &arrived, &status));
    if (!arrived) return std::nullopt;
    int len = 0;
    MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &len));
    std::string bytes(static_cast<size_t>(len), '\0');
    MPI_CHECK(MPI_Recv(bytes.data(), len, MPI_BYTE, status.MPI_SOURCE, tag, world_, MPI_STATUS_IGNORE));
    if (source) *source = status.MPI_SOURCE;
    return bytes;
  }
  // Drops delivered posts from the front of the queue.
  void reap() {
    while (!posted_.empty()) {
      int done = 0;
      MPI_CHECK(MPI_Test(&posted_.front().second, &done, MPI_STATUS_IGNORE));
      if (!done) return;
      posted_.pop_front();
    }
  }

  MPI_Comm world_;
  MPI_Comm tp_;
  std::deque<std::pair<std::string, MPI_Request>> posted_;
  double seconds_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm) { return std::make_unique<MpiCommunicator>(comm); }

std::unique_ptr<ControlChannel> make_mpi_control_channel(MPI_Comm world, MPI_Comm tp_group) {
  return std::make_unique<MpiControlChannel>(world, tp_group);
}

}  // namespace lattice::parallel
