#include <cstring>

#include "parallel/communicator.h"

namespace lattice::parallel {

namespace {

// Copies `in` into `out` unless they share a buffer. Host tensors only: this communicator has no stream to
// order a device copy on, so on a GPU the caller passes out == in (or skips the call).
void copy_whole(const Tensor& in, Tensor& out, const char* op) {
  LATTICE_CHECK(out.dtype() == in.dtype() && out.numel() == in.numel(), op, ": out ", out.describe(), " for in ",
                in.describe());
  if (out.raw() == in.raw()) return;
  LATTICE_CHECK(in.device().is_cpu() && out.device().is_cpu(), "single-rank ", op, " copies host tensors only, got ",
                in.describe(), " into ", out.describe(), "; pass the same tensor as in and out");
  std::memcpy(out.raw(), in.raw(), in.nbytes());
}

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }
  void all_reduce_sum(Tensor&) override {}
  void all_gather(const Tensor& in, Tensor& out) override { copy_whole(in, out, "all_gather"); }
  void gather(const Tensor& in, Tensor& out, int root) override {
    LATTICE_CHECK(root == 0, "gather root ", root, " in a group of 1");
    copy_whole(in, out, "gather");
  }
  void broadcast(Tensor&, int root) override { LATTICE_CHECK(root == 0, "broadcast root ", root, " in a group of 1"); }
  void send(const Tensor&, int peer) override { LATTICE_THROW("send to peer ", peer, " in a group of 1"); }
  void recv(Tensor&, int peer) override { LATTICE_THROW("recv from peer ", peer, " in a group of 1"); }
  void barrier() override {}
  void synchronize() override {}
  double seconds() const override { return 0; }
};

}  // namespace

std::unique_ptr<Communicator> make_single_rank_communicator() { return std::make_unique<SingleRankCommunicator>(); }

}  // namespace lattice::parallel
