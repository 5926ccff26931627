// Token ids a step takes from the previous step's sampled tokens on the device (async scheduling,
// engine/model_runner.h), so the step can be enqueued before those tokens reach the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// For i < count: ids[feeds[2 i]] = tokens[feeds[2 i + 1]], a token outside [0, vocab) (a row whose draw failed,
// discarded by the scheduler) becoming 0 so that the embedding never reads outside its table. feeds: i32
// [count, 2] (token row of the step, index into tokens), ids and tokens i32; all on the device.
void feed_tokens(int32_t* ids, const int32_t* tokens, const int32_t* feeds, int32_t count, int32_t vocab,
                 cudaStream_t stream);

}  // namespace lattice::kernels::cuda
