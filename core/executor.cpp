#include "executor.hpp"

#include <algorithm>
#include <memory>
#include <mutex>

#include <cblas.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "errors.hpp"

namespace seqgrad {

namespace {
std::mutex threads_mu;
std::size_t threads_setting = 0;  // 0: TBB's default
std::unique_ptr<tbb::global_control> control;

// OpenBLAS's thread count is process-wide, and parallel regions overlap when several threads run
// backward at once: a save/restore per region would leave it at 1 (the second region saves the
// first one's 1) and change it under BLAS calls of other regions. So the regions share it: the
// first to enter sets it to 1, the last to leave restores the caller's count, and a
// set_blas_threads() meanwhile takes effect then. A count that is already 1 is never touched.
std::mutex blas_mu;
int regions = 0;
int outside = 0;  // the count to restore when the last region leaves
}  // namespace

void set_num_threads(std::size_t n) {
    if (n == 0) throw value_error("set_num_threads: expected at least 1 thread");
    std::lock_guard<std::mutex> lock(threads_mu);
    threads_setting = n;
    control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

std::size_t num_threads() {
    std::lock_guard<std::mutex> lock(threads_mu);
    if (threads_setting) return threads_setting;
    return static_cast<std::size_t>(tbb::this_task_arena::max_concurrency());
}

void set_blas_threads(int n) {
    std::lock_guard<std::mutex> lock(blas_mu);
    if (regions > 0) outside = std::max(1, n);
    else openblas_set_num_threads(std::max(1, n));
}
int blas_threads() { return openblas_get_num_threads(); }

namespace detail {
void enter_parallel_region() {
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
    if (n < 2 || num_threads() < 2) {
        for (std::size_t i = 0; i < n; ++i) f(i);
        return false;
    }
    struct region {
        region() { enter_parallel_region(); }
        ~region() { leave_parallel_region(); }
    } guard;
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) f(i);
    });
    return true;
}
}  // namespace detail

}  // namespace seqgrad
