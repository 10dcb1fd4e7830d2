#pragma once
// Graph transforms applied by backward to the recorded, unrolled graph through its time-step
// marks, and the executor settings that run the independent work they expose in parallel.
//
//   t.backward(loss, sg::truncate_bptt(35) | sg::clip_global_norm(5.0));
//
// A plan is a plain value; `|` combines plans (setting the same transform twice is an error).
#include <cstddef>
#include <functional>
#include <vector>

#include "errors.hpp"

namespace seqgrad {

/// Filled by record_gradient_flow: ||dL/dh_t|| for every time step t, over the nodes marked as
/// recurrent states with tape::mark_state (nn::unroll marks each step's hidden state). Steps
/// without a marked state, or that the gradient did not reach, read 0.
struct gradient_flow {
    std::vector<double> norm;
};

/// What backward does besides plain backpropagation through time.
struct backward_plan {
    /// Truncated BPTT: every k1 steps, the losses of those k1 steps send gradients back at most
    /// k2 steps (k1 <= k2). 0 = no truncation. k2 >= the number of steps is full BPTT, exactly.
    std::size_t k1 = 0, k2 = 0;
    /// Scale this pass's parameter gradients so their global L2 norm is at most clip_norm.
    double clip_norm = 0;
    /// Clamp this pass's parameter gradients to [-clip_value, clip_value].
    double clip_value = 0;
    /// Clamp, elementwise, the gradient flowing along every edge from one time step to a later
    /// one (Graves 2013) to [-clip_state, clip_state].
    double clip_state = 0;
    gradient_flow* flow = nullptr;
};

backward_plan truncate_bptt(std::size_t k1, std::size_t k2 = 0);
backward_plan clip_global_norm(double max_norm);
backward_plan clip_value(double c);
backward_plan clip_state_gradient(double c);
backward_plan record_gradient_flow(gradient_flow& out);
backward_plan operator|(backward_plan a, const backward_plan& b);

/// What a backward pass did.
struct backward_stats {
    /// Global L2 norm of this pass's parameter gradients before clipping (computed only when the
    /// plan has clip_global_norm; 0 otherwise).
    double grad_norm = 0;
    bool clipped = false;
    /// Independent pieces the backward was cut into: truncation windows, or groups marked with
    /// group_scope (the directions of a bidirectional layer); 1 otherwise.
    std::size_t windows = 1;
    /// Whether the pieces ran as separate passes (parallel when threads allow).
    bool parallel = false;
};

// ---- execution ----------------------------------------------------------------------------------

/// Threads seqgrad's executor may use (TBB). Defaults to the machine's cores. Inside a parallel
/// region every BLAS call runs on one thread, so TBB and OpenBLAS never oversubscribe the cores;
/// outside, OpenBLAS keeps the thread count set with set_blas_threads.
void set_num_threads(std::size_t n);
std::size_t num_threads();

namespace detail {
/// Run f(i) for i in [0, n) on the executor's threads, BLAS limited to one thread meanwhile.
/// Work items must be independent; results must not depend on which thread runs which item.
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);
}  // namespace detail

}  // namespace seqgrad
