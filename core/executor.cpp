#include "executor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include <cblas.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include "errors.hpp"

namespace seqgrad {

namespace {
std::mutex threads_mu;
std::atomic<std::size_t> threads_setting{0};  // 0: TBB's default
std::unique_ptr<tbb::global_control> control;

// OpenBLAS's thread count is process-wide, and parallel regions overlap when several threads run
// backward at once: a save/restore per region would leave it at 1 (the second region saves the
// first one's 1) and change it under BLAS calls of other regions. So the regions share it: the
// first to enter sets it to 1, the last to leave restores the caller's count, and a
// set_blas_threads() meanwhile takes effect then. A count that is already 1 is never touched.
std::mutex blas_mu;
int regions = 0;
int outside = 0;  // the count to restore when the last region leaves

// set_blas_threads(0), the default: OpenBLAS on one thread, products split by detail::gemm. Set
// on first use, since OpenBLAS starts with one thread per core.
std::atomic<bool> auto_blas{true};
std::once_flag blas_init;
void init_blas_policy() {
    std::call_once(blas_init, [] {
        std::lock_guard<std::mutex> lock(blas_mu);
        if (!auto_blas.load()) return;
        if (regions == 0) openblas_set_num_threads(1);
        else outside = 1;  // what the last region to leave restores
    });
}

thread_local int task_depth = 0;  // > 0 inside a parallel_for item

std::atomic<bool> flush_on{true};
}  // namespace

namespace detail {
std::atomic<unsigned> fp_mode_generation{1};

void apply_fp_mode() noexcept {
    const unsigned gen = fp_mode_generation.load(std::memory_order_acquire);
    const bool on = flush_on.load(std::memory_order_relaxed);
#if defined(__SSE__)
    constexpr unsigned ftz_daz = 0x8040;  // MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? csr | ftz_daz : csr & ~ftz_daz);
#elif defined(__aarch64__)
    std::uint64_t fpcr;
    asm volatile("mrs %0, fpcr" : "=r"(fpcr));
    constexpr std::uint64_t fz = std::uint64_t(1) << 24;
    fpcr = on ? fpcr | fz : fpcr & ~fz;
    asm volatile("msr fpcr, %0" : : "r"(fpcr));
#else
    (void)on;
#endif
    fp_mode_seen = gen;
}
}  // namespace detail

void set_flush_denormals(bool on) {
    flush_on.store(on);
    detail::fp_mode_generation.fetch_add(1, std::memory_order_acq_rel);
}
bool flush_denormals() { return flush_on.load(); }

void set_num_threads(std::size_t n) {
    if (n == 0) throw value_error("set_num_threads: expected at least 1 thread");
    std::lock_guard<std::mutex> lock(threads_mu);
    threads_setting = n;
    control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

std::size_t num_threads() {
    if (const std::size_t n = threads_setting.load()) return n;
    return static_cast<std::size_t>(tbb::this_task_arena::max_concurrency());
}

void set_blas_threads(int n) {
    init_blas_policy();
    std::lock_guard<std::mutex> lock(blas_mu);
    auto_blas = n <= 0;
    if (regions > 0) outside = std::max(1, n);
    else openblas_set_num_threads(std::max(1, n));
}
int blas_threads() {
    init_blas_policy();
    return openblas_get_num_threads();
}

namespace detail {
void enter_parallel_region() {
    init_blas_policy();  // before the first region counts: else the policy never holds OpenBLAS at one thread
    std::lock_guard<std::mutex> lock(blas_mu);
    if (regions++ > 0) return;
    outside = openblas_get_num_threads();
    if (outside != 1) openblas_set_num_threads(1);
}
void leave_parallel_region() noexcept {
    std::lock_guard<std::mutex> lock(blas_mu);
    if (--regions > 0) return;
    if (outside != 1) openblas_set_num_threads(outside);
}

bool parallel_for(std::size_t n, const std::function<void(std::size_t)>& f) {
    sync_fp_mode();  // the caller's own share, and what it does with the items' results
    if (n < 2 || num_threads() < 2) {
        for (std::size_t i = 0; i < n; ++i) f(i);
        return false;
    }
    struct region {
        region() { enter_parallel_region(); }
        ~region() { leave_parallel_region(); }
    } guard;
    // Isolated: a thread waiting for the items runs only items, never other work queued on this
    // thread (an overlap's, which may wait for what the caller does next).
    tbb::this_task_arena::isolate([&] {
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1), [&](const tbb::blocked_range<std::size_t>& r) {
            struct depth {
                depth() { ++task_depth; }
                ~depth() { --task_depth; }
            } inside;
            // Every item, not once a thread: TBB runs a task under the floating-point mode its
            // arena captured when it started, over the thread's own (so a thread that had followed
            // a change of set_flush_denormals ran its next items in the old mode).
            apply_fp_mode();
            for (std::size_t i = r.begin(); i != r.end(); ++i) f(i);
        });
    });
    return true;
}

namespace {
std::atomic<bool> overlap_on{true};
}
void set_gradient_overlap(bool on) { overlap_on.store(on); }
bool gradient_overlap() { return overlap_on.load(std::memory_order_relaxed); }

struct overlap::impl {
    tbb::task_group group;
};
overlap::overlap() = default;
overlap::~overlap() {
    try {
        wait();
    } catch (...) {  // unwinding already, or the owner never waited: the work is done either way
    }
}

bool overlap::run(std::function<void()> f) {
    if (num_threads() < 2 || task_depth > 0) return false;
    if (!pending_) {
        if (!impl_) impl_ = std::make_unique<impl>();
        enter_parallel_region();  // left by wait()
        pending_ = true;
    }
    impl_->group.run([f = std::move(f)] {
        ++task_depth;
        struct leave {
            ~leave() { --task_depth; }
        } guard;
        apply_fp_mode();  // the arena's captured mode, not the thread's (see parallel_for)
        f();
    });
    return true;
}

void overlap::wait() {
    if (!pending_) return;
    pending_ = false;
    struct region {
        ~region() { leave_parallel_region(); }
    } guard;
    impl_->group.wait();
}

std::size_t split_ways() { return task_depth > 0 ? 1 : num_threads(); }

bool executor_threads_blas() {
    init_blas_policy();
    return auto_blas.load(std::memory_order_relaxed);
}

void parallel_rows(std::size_t rows, double cost_per_row, const std::function<void(std::size_t, std::size_t)>& f,
                   double min_work) {
    const std::size_t ways = std::min(split_ways(), rows);
    if (ways < 2 || double(rows) * cost_per_row < min_work) {
        f(0, rows);
        return;
    }
    parallel_for(ways, [&](std::size_t p) { f(rows * p / ways, rows * (p + 1) / ways); });
}
}  // namespace detail

}  // namespace seqgrad
