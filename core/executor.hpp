#pragma once
// The executor: the one owner of the cores. Parallel work in seqgrad (the windows and directions
// backward sweeps as separate passes, data_parallel's parts, the gradient-norm reduction) runs
// through detail::parallel_for on TBB, and OpenBLAS's own thread pool is held at one thread while
// any such region runs, so the two never oversubscribe the cores. Several threads may each run
// their own tapes (and their own parallel regions) at once.
#include <cstddef>
#include <functional>

namespace seqgrad {

/// Threads the executor may use (TBB). Defaults to the machine's cores.
void set_num_threads(std::size_t n);
std::size_t num_threads();

/// Threads OpenBLAS may use inside one product (a process-wide setting). The executor's policy:
/// BLAS gets one thread while any parallel region runs (the first region to start sets it, the
/// last to end restores it, however many threads run backward at once), and the caller's choice
/// otherwise; set_blas_threads() during a region takes effect when the last one ends. With a
/// count of 1 the executor never changes it: call set_blas_threads(1) once when your own threads
/// call BLAS (or run backward) concurrently with seqgrad's.
void set_blas_threads(int n);
/// The count OpenBLAS uses now (1 inside parallel regions).
int blas_threads();

namespace detail {
/// Run f(i) for i in [0, n) on the executor's threads, BLAS limited to one thread meanwhile; a
/// plain loop on the calling thread when n < 2 or the executor has one thread. Work items must be
/// independent; results must not depend on which thread runs which item. Returns whether the
/// items ran as a parallel region.
bool parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);
/// Bracket a parallel region by hand (reference counted across threads; see set_blas_threads).
void enter_parallel_region();
void leave_parallel_region() noexcept;
}  // namespace detail

}  // namespace seqgrad
