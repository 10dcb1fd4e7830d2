#include "transforms.hpp"

#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "blas.hpp"

namespace seqgrad {

namespace {
void require_positive(const char* who, double v) {
    if (!(v > 0) || !std::isfinite(v))
        throw value_error(std::string(who) + ": expected a positive finite threshold, got " + std::to_string(v));
}
}  // namespace

backward_plan truncate_bptt(std::size_t k1, std::size_t k2) {
    if (k1 == 0) throw value_error("truncate_bptt: k1 must be at least 1");
    if (k2 == 0) k2 = k1;
    if (k2 < k1)
        throw value_error("truncate_bptt(" + std::to_string(k1) + ", " + std::to_string(k2) +
                          "): expected k2 >= k1 (gradients from every k1 steps flow back k2 steps)");
    backward_plan p;
    p.k1 = k1;
    p.k2 = k2;
    return p;
}
backward_plan clip_global_norm(double max_norm) {
    require_positive("clip_global_norm", max_norm);
    backward_plan p;
    p.clip_norm = max_norm;
    return p;
}
backward_plan clip_value(double c) {
    require_positive("clip_value", c);
    backward_plan p;
    p.clip_value = c;
    return p;
}
backward_plan clip_state_gradient(double c) {
    require_positive("clip_state_gradient", c);
    backward_plan p;
    p.clip_state = c;
    return p;
}
backward_plan record_gradient_flow(gradient_flow& out) {
    backward_plan p;
    p.flow = &out;
    return p;
}

backward_plan operator|(backward_plan a, const backward_plan& b) {
    auto twice = [](const char* what) { throw value_error(std::string("backward plan: ") + what + " is set twice"); };
    if (b.k1) {
        if (a.k1) twice("truncate_bptt");
        a.k1 = b.k1;
        a.k2 = b.k2;
    }
    if (b.clip_norm) {
        if (a.clip_norm) twice("clip_global_norm");
        a.clip_norm = b.clip_norm;
    }
    if (b.clip_value) {
        if (a.clip_value) twice("clip_value");
        a.clip_value = b.clip_value;
    }
    if (b.clip_state) {
        if (a.clip_state) twice("clip_state_gradient");
        a.clip_state = b.clip_state;
    }
    if (b.flow) {
        if (a.flow) twice("record_gradient_flow");
        a.flow = b.flow;
    }
    return a;
}

// ---- executor -------------------------------------------------------------------------------------

namespace {
std::mutex executor_mu;
std::size_t threads_setting = 0;  // 0: TBB's default
std::unique_ptr<tbb::global_control> control;
}  // namespace

void set_num_threads(std::size_t n) {
    if (n == 0) throw value_error("set_num_threads: expected at least 1 thread");
    std::lock_guard<std::mutex> lock(executor_mu);
    threads_setting = n;
    control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

std::size_t num_threads() {
    std::lock_guard<std::mutex> lock(executor_mu);
    if (threads_setting) return threads_setting;
    return static_cast<std::size_t>(tbb::this_task_arena::max_concurrency());
}

namespace detail {
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f) {
    // One BLAS thread per task while TBB owns the cores; the caller's setting comes back after the
    // last concurrent region ends (regions on several threads share the setting).
    struct region {
        region() { enter_parallel_region(); }
        ~region() { leave_parallel_region(); }
    } guard;
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i != r.end(); ++i) f(i);
    });
}
}  // namespace detail

}  // namespace seqgrad
