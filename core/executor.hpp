#pragma once
// The executor: the one owner of the cores. Parallel work in seqgrad (the windows and directions
// backward sweeps as separate passes, data_parallel's parts, the gradient-norm reduction, and
// within one model the large products, the softmax rows and the per-step recurrent work at larger
// batches) runs through detail::parallel_for on TBB; at small batches the recurrent weight's
// gradient goes to another thread during the rest of backward (detail::overlap). OpenBLAS's own
// thread pool is held at one thread by default: the executor splits a large product into blocks of
// rows or columns itself, one single-threaded BLAS call per block, so the two pools never
// oversubscribe the cores and a user asks only for a thread count. Several threads may each run
// their own tapes (and their own parallel regions) at once.
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>

namespace seqgrad {

/// Threads the executor may use (TBB), for parallel regions and for splitting one model's work.
/// Defaults to the machine's cores. Results are deterministic for a given count: work is split
/// into blocks that depend only on the sizes and the count, never on the schedule.
void set_num_threads(std::size_t n);
std::size_t num_threads();

/// Who threads BLAS products. 0 (the default): the executor; OpenBLAS runs on one thread and each
/// product large enough to gain from it is split across num_threads() threads, smaller ones stay
/// on the calling thread. n >= 1: OpenBLAS threads every product itself with n threads (a
/// process-wide setting) and the executor splits none; BLAS still gets one thread while any
/// parallel region runs (the first region to start sets it, the last to end restores it, however
/// many threads run backward at once); set_blas_threads() during a region takes effect when the
/// last one ends. With a count of 1 the executor never changes it: call set_blas_threads(1) once
/// when your own threads call BLAS (or run backward) concurrently with seqgrad's.
void set_blas_threads(int n);
/// The count OpenBLAS uses now (1 inside parallel regions and under the default policy).
int blas_threads();

/// Subnormal numbers (|x| below 1.2e-38 in float) flushed to zero, on by default, in every thread
/// that runs seqgrad's kernels (the thread recording a tape or running backward, and the
/// executor's threads). Training drives gate gradients and rarely used weights' updates into that
/// range, where x86 arithmetic, OpenBLAS's GEMM kernels included, runs 10-100x slower: a GRU
/// language model slowed 4-5x after a few hundred steps (bench/cells). TensorFlow runs its
/// threads the same way; PyTorch leaves it to torch.set_flush_denormal. The mode is the thread's
/// floating-point control register (FTZ and DAZ on x86, FZ on AArch64): a thread calling seqgrad
/// keeps it afterwards. false restores gradual underflow in each such thread at its next call.
/// Values differ from IEEE only below 1.2e-38 (float) or 2.2e-308 (double).
void set_flush_denormals(bool on);
bool flush_denormals();

namespace detail {
extern std::atomic<unsigned> fp_mode_generation;  // bumped by set_flush_denormals
inline thread_local unsigned fp_mode_seen = 0;
void apply_fp_mode() noexcept;
/// Bring the calling thread's floating-point mode in line with set_flush_denormals: one
/// thread-local comparison, the register written only when the setting changed since this thread
/// last looked. Called where kernels start (tape::apply, backward, parallel_for items).
inline void sync_fp_mode() noexcept {
    if (fp_mode_seen != fp_mode_generation.load(std::memory_order_relaxed)) [[unlikely]]
        apply_fp_mode();
}

/// Run f(i) for i in [0, n) on the executor's threads, BLAS limited to one thread meanwhile; a
/// plain loop on the calling thread when n < 2 or the executor has one thread. Work items must be
/// independent; results must not depend on which thread runs which item. Returns whether the
/// items ran as a parallel region. Work inside an item is not split further (see split_ways).
bool parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);
/// Passes over whole buffers (an optimiser's step, gradient clipping) split into items across the
/// threads from this many entries in all: below, waking a thread costs more than such a pass
/// saves (a char LM's 150K entries trained 5-10% slower on 2 threads than on 1 split from 64K).
constexpr std::size_t min_split_entries = std::size_t(1) << 20;
/// parallel_for(n, f) when `entries` reaches min_split_entries, else f(0) ... f(n - 1) in order here.
inline void parallel_for_entries(std::size_t n, std::size_t entries, const std::function<void(std::size_t)>& f) {
    if (entries >= min_split_entries) parallel_for(n, f);
    else
        for (std::size_t i = 0; i < n; ++i) f(i);
}
/// Work handed to another executor thread while the caller goes on (a weight gradient's product
/// during the rest of a backward sweep, where nothing reads it until the sweep ends). run(f)
/// queues f, or declines (returns false, f not run: the caller does the work itself) when the
/// executor has one thread or the caller is inside a parallel_for item; wait() returns when
/// everything queued is done, the caller running what no thread has taken yet (so a busy or slow
/// second core costs nothing but the queueing), and rethrows the first exception. f runs like a
/// parallel_for item (BLAS on one thread, the set_flush_denormals mode, no further splitting), so
/// where it runs changes no bit of its result. The destructor waits too. One owner thread; not
/// copyable.
class overlap {
public:
    overlap();
    ~overlap();
    overlap(const overlap&) = delete;
    overlap& operator=(const overlap&) = delete;
    /// Whether f was queued (false: not run).
    bool run(std::function<void()> f);
    void wait();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    bool pending_ = false;
};

/// Weight-gradient work handed to another thread during backward (overlap: lstm_step's dW_hh at
/// small batches, ops/recurrent_chain.cpp), on by default; a process-wide switch for measuring it
/// and for debugging.
void set_gradient_overlap(bool on);
bool gradient_overlap();
/// Bracket a parallel region by hand (reference counted across threads; see set_blas_threads).
void enter_parallel_region();
void leave_parallel_region() noexcept;

/// How many ways a kernel running on the calling thread may split its work: num_threads(), or 1
/// inside a parallel_for item (the region already uses the threads).
std::size_t split_ways();
/// Marks the calling thread as running a time step's node (forward or backward) while it lives.
/// A step's products recur T times per sequence, so detail::gemm splits them from a lower size
/// (the per-step recurrent product at B >= 8) than products done once per sequence, where
/// waking a thread costs more than it gives.
struct step_work {
    explicit step_work(bool on) noexcept : prev_(active) { active = on; }
    ~step_work() { active = prev_; }
    step_work(const step_work&) = delete;
    step_work& operator=(const step_work&) = delete;
    static inline thread_local bool active = false;

private:
    bool prev_;
};
/// Whether detail::gemm splits products itself (set_blas_threads(0), the default).
bool executor_threads_blas();
/// Kernels' row loops: f(begin, end) over contiguous blocks covering [0, rows), one block per
/// thread when the work (rows * cost_per_row) reaches min_work, i.e. is large enough to repay waking a
/// thread, else f(0, rows) on the calling thread. Block bounds depend only on rows and the count.
/// Work (pointwise element operations) below which splitting does not repay its cost.
constexpr double min_split_work = 1.5e5;
void parallel_rows(std::size_t rows, double cost_per_row, const std::function<void(std::size_t, std::size_t)>& f,
                   double min_work = min_split_work);
}  // namespace detail

}  // namespace seqgrad
