#include <cstring>

#include "parallel/communicator.h"

namespace lattice::parallel {

namespace {

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }
  void all_reduce_sum(Tensor&) override {}
  void all_gather(const Tensor& in, Tensor& out) override {
    LATTICE_CHECK(out.nbytes() == in.nbytes(), "all_gather: out ", out.describe(), " for in ", in.describe());
    if (out.raw() != in.raw()) std::memcpy(out.raw(), in.raw(), in.nbytes());
  }
  void broadcast(Tensor&, int root) override { LATTICE_CHECK(root == 0, "broadcast root ", root, " in a group of 1"); }
  void send(const Tensor&, int peer) override { LATTICE_THROW("send to peer ", peer, " in a group of 1"); }
  void recv(Tensor&, int peer) override { LATTICE_THROW("recv from peer ", peer, " in a group of 1"); }
  void barrier() override {}
  double seconds() const override { return 0; }
};

}  // namespace

std::unique_ptr<Communicator> make_single_rank_communicator() { return std::make_unique<SingleRankCommunicator>(); }

}  // namespace lattice::parallel
