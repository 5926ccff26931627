// The rule that picks a rank's tensor communicator (parallel/communicator_choice.h), without MPI or a GPU.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "parallel/communicator_choice.h"

namespace lattice::parallel {
namespace {

TEST(CommunicatorChoice, OneGpuPerRankUsesNcclOnTheLocalRanksGpu) {
  for (int local_rank = 0; local_rank < 4; ++local_rank) {
    const CommunicatorChoice c = choose_device_communicator(local_rank, 4, 8, true);
    EXPECT_EQ(c.backend, CommBackend::nccl);
    EXPECT_EQ(c.device_id, local_rank);
  }
  EXPECT_EQ(choose_device_communicator(3, 4, 4, true).describe(), "nccl (one GPU per rank)");
}

TEST(CommunicatorChoice, RanksSharingGpusStageThroughTheHostRoundRobin) {
  const CommunicatorChoice one = choose_device_communicator(3, 4, 1, true);
  EXPECT_EQ(one.backend, CommBackend::mpi_host_staging);
  EXPECT_EQ(one.device_id, 0);
  EXPECT_EQ(one.describe(), "mpi with host staging (4 ranks share 1 GPU; NCCL needs one GPU per rank)");
  // 8 ranks on 3 GPUs: local ranks 0..7 on GPUs 0 1 2 0 1 2 0 1.
  const int want[] = {0, 1, 2, 0, 1, 2, 0, 1};
  for (int local_rank = 0; local_rank < 8; ++local_rank) {
    const CommunicatorChoice c = choose_device_communicator(local_rank, 8, 3, true);
    EXPECT_EQ(c.backend, CommBackend::mpi_host_staging);
    EXPECT_EQ(c.device_id, want[local_rank]) << "local rank " << local_rank;
  }
  EXPECT_EQ(choose_device_communicator(0, 8, 3, true).reason, "8 ranks share 3 GPUs; NCCL needs one GPU per rank");
}

TEST(CommunicatorChoice, WithoutNcclOneGpuPerRankStillStages) {
  const CommunicatorChoice c = choose_device_communicator(1, 2, 2, false);
  EXPECT_EQ(c.backend, CommBackend::mpi_host_staging);
  EXPECT_EQ(c.device_id, 1);
  EXPECT_EQ(c.describe(), "mpi with host staging (one GPU per rank, but this build has no NCCL)");
}

TEST(CommunicatorChoice, NoVisibleGpuOrABadLocalRankIsAnError) {
  try {
    choose_device_communicator(0, 2, 0, true);
    FAIL() << "no device accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device is visible to local rank 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(choose_device_communicator(2, 2, 4, true), Error);
  EXPECT_THROW(choose_device_communicator(-1, 2, 4, true), Error);
}

TEST(CommunicatorChoice, CpuRanksUseMpiOrNothing) {
  EXPECT_EQ(choose_host_communicator(4).describe(), "mpi (CPU tensors)");
  EXPECT_EQ(choose_host_communicator(4).device_id, -1);
  EXPECT_EQ(choose_host_communicator(1).backend, CommBackend::single);
}

}  // namespace
}  // namespace lattice::parallel
