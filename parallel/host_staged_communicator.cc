#include "parallel/host_staged_communicator.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "engine/cuda/device_context.h"
#include "kernels/cuda/cuda_check.h"
#include "parallel/scoped_timer.h"

namespace lattice::parallel {

namespace {

constexpr size_t kAlign = 256;

size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

class HostStagedCommunicator final : public Communicator {
 public:
  HostStagedCommunicator(std::unique_ptr<Communicator> host, const DeviceBinding& device)
      : host_(std::move(host)), device_(device), name_(std::string(host_->backend()) + " with host staging") {}
  ~HostStagedCommunicator() override {
    if (uploads_pending_) cudaStreamSynchronize(device_.stream);  // uploads still read the pinned buffer
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const char* backend() const override { return name_.c_str(); }

  void all_reduce_sum(Tensor& t) override {
    settle(t);
    ScopedTimer timed(seconds_);
    reserve(t.nbytes(), 0);
    Tensor staged = download(t, 0);
    host_->all_reduce_sum(staged);
    upload(staged, t);
  }
  void all_gather(const Tensor& in, Tensor& out) override {
    settle(in);
    ScopedTimer timed(seconds_);
    reserve(in.nbytes(), out.nbytes());
    const Tensor staged_in = download(in, 0);
    Tensor staged_out = landing(out, aligned(in.nbytes()));
    host_->all_gather(staged_in, staged_out);
    upload(staged_out, out);
  }
  void gather(const Tensor& in, Tensor& out, int root) override {
    settle(in);
    ScopedTimer timed(seconds_);
    const bool receives = rank() == root && out.defined();
    reserve(in.nbytes(), receives ? out.nbytes() : 0);
    const Tensor staged_in = download(in, 0);
    Tensor staged_out = receives ? landing(out, aligned(in.nbytes())) : out;
    host_->gather(staged_in, staged_out, root);
    if (receives) upload(staged_out, out);
  }
  void broadcast(Tensor& t, int root) override {
    if (rank() == root) settle(t);
    ScopedTimer timed(seconds_);
    reserve(t.nbytes(), 0);
    Tensor staged = rank() == root ? download(t, 0) : landing(t, 0);
    host_->broadcast(staged, root);
    if (rank() != root) upload(staged, t);
  }
  void send(const Tensor& t, int peer) override {
    settle(t);
    ScopedTimer timed(seconds_);
    reserve(t.nbytes(), 0);
    host_->send(download(t, 0), peer);
  }
  void recv(Tensor& t, int peer) override {
    ScopedTimer timed(seconds_);
    reserve(t.nbytes(), 0);
    Tensor staged = landing(t, 0);
    host_->recv(staged, peer);
    upload(staged, t);
  }
  void barrier() override {
    ScopedTimer timed(seconds_);
    host_->barrier();
  }
  void synchronize() override {
    ScopedTimer timed(seconds_);
    if (uploads_pending_) wait_for_stream();
  }
  double seconds() const override { return seconds_; }

 private:
  bool staged(const Tensor& t) const {
    if (t.device().is_cpu()) return false;
    LATTICE_CHECK(t.device() == Device::cuda(device_.index), name_, " on ", t.describe(),
                  ": this rank's communicator works on cuda:", device_.index);
    return true;
  }

  // Waits, outside the time counted, for the work queued before an operation (which produced its device operand),
  // so that seconds() is the staging copies and the MPI operation, not the compute before them.
  void settle(const Tensor& operand) {
    if (staged(operand)) wait_for_stream();
  }

  // Room for two operands in the pinned buffer: the first at offset 0, the second at aligned(first).
  void reserve(size_t first, size_t second) {
    const size_t need = aligned(first) + second;
    if (buffer_.size() >= need) return;
    if (uploads_pending_) wait_for_stream();  // before freeing the buffer they read
    buffer_ = PinnedBuffer(std::max(need, 2 * buffer_.size()));
  }

  Tensor host_view(const Tensor& t, size_t offset) const {
    return Tensor::borrow(static_cast<std::byte*>(buffer_.data()) + offset, t.shape(), t.dtype());
  }

  // The operand on the host: a device tensor is copied after everything queued before it on the stream.
  Tensor download(const Tensor& t, size_t offset) {
    if (!staged(t)) return t;
    Tensor view = host_view(t, offset);
    copy_async(view.raw(), t.raw(), t.nbytes(), device_.stream);
    wait_for_stream();
    return view;
  }

  // Host memory the operation writes a device result into (free of pending uploads).
  Tensor landing(const Tensor& t, size_t offset) {
    if (!staged(t)) return t;
    if (uploads_pending_) wait_for_stream();
    return host_view(t, offset);
  }

  // Queues the copy of a staged result back to its device tensor; later work on the stream sees it.
  void upload(const Tensor& view, Tensor& t) {
    if (!staged(t)) return;
    copy_async(t.raw(), view.raw(), t.nbytes(), device_.stream);
    uploads_pending_ = true;
  }

  void wait_for_stream() {
    CUDA_CHECK(cudaStreamSynchronize(device_.stream));
    uploads_pending_ = false;
  }

  std::unique_ptr<Communicator> host_;
  DeviceBinding device_;
  std::string name_;
  PinnedBuffer buffer_;
  bool uploads_pending_ = false;  // copies from buffer_ queued on the stream and not yet waited for
  double seconds_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            const DeviceBinding& device) {
  LATTICE_CHECK(host != nullptr, "host-staged communicator without a host communicator");
  return std::make_unique<HostStagedCommunicator>(std::move(host), device);
}

}  // namespace lattice::parallel
