// Truncated BPTT, windows in parallel: the backward pass of a 512-step LSTM (hidden 256, batch 16,
// input 64) cut by sg::truncate_bptt(64) into 8 windows, with the executor on 1 thread and on 2.
//
// The forward pass is recorded once; backward is then timed again and again on the same tape,
// alternating 1 and 2 threads so that both see the same machine load, and the best time of each
// is reported. The loss is a fixed random projection of every step's h, summed outside the step
// scopes (an untimed total), so the transform can cut every edge between windows. The parameter
// gradients of the 1-thread and 2-thread passes are compared byte for byte: the windows' gradients
// are reduced in window order whatever the schedule. BLAS runs under the library's default policy
// (OpenBLAS on one thread; the executor splits large products outside the windows over its
// threads, each entry still one dot product, so the result does not depend on the count).
//
// Two builds of the same LSTM (same parameters, same loss):
//   tbptt.*        nn::lstm_cell through nn::unroll over the list of steps (per-step cell). Every node but the
//                  parameters belongs to a step, so all of the work lies inside the windows.
//   tbptt_fused.*  the same cell through nn::unroll over the whole [T, B, I] sequence, which runs
//                  it as the fused layer: the input projections of all steps hoisted into one
//                  [T*B, 4H] GEMM node outside the steps, then one fused node per step. The hoisted node's
//                  backward (the weight gradient over all T*B rows) and the window-order sum of
//                  the windows' dense gradients into it run after the windows, so it gains less
//                  from the second thread (Amdahl). Its backward is slower than the per-step cell's
//                  here (150 vs 128 ms on one thread, 2026-12-03), its forward much faster (60
//                  vs 147 ms).
//
//     tbptt                      # both
//     tbptt --layer composed     # or fused
//     tbptt --reps 15
//
// Prints, for each: backward_ms_1thread, backward_ms_2threads, window_parallel_speedup,
// bitwise_equal, full_bptt_ms (the same backward without truncation, 1 thread, for reference), and
// cores_busy_2threads (process CPU time over wall time during the 2-thread passes: a speedup near 1
// with this near 1 means the machine was busy, not that the windows ran serially).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "examples/cli.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t T = 512, B = 16, I = 64, H = 256, K = 64;

xt::xarray<float> random_array(std::vector<std::size_t> shape, std::mt19937_64& rng) {
    std::normal_distribution<float> d(0.0f, 1.0f);
    xt::xarray<float> a = xt::zeros<float>(shape);
    for (auto& v : a) v = d(rng);
    return a;
}

// The parameter gradients as bytes, in store order.
std::vector<char> gradient_bytes(const sg::parameter_store& ps) {
    std::vector<char> out;
    for (const auto& p : ps.parameters()) {
        const auto& g = p.grad<float>();
        const char* b = reinterpret_cast<const char*>(g.data());
        out.insert(out.end(), b, b + g.size() * sizeof(float));
    }
    return out;
}

// CPU time of the whole process (all threads), in ms.
double cpu_ms() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return (static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
            static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-3);
}

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

// Build the forward pass of one variant on t and return its untimed loss.
sg::expr forward(sg::tape& t, const nn::lstm_cell& cell, bool fused, const std::vector<xt::xarray<float>>& xs,
                 const std::vector<xt::xarray<float>>& rs) {
    if (fused) {
        // All T steps as one [T, B, I] sequence (unroll runs lstm_cell's fused layer on it); the
        // loss reads every h through one [T*B, H] matrix.
        xt::xarray<float> x = xt::zeros<float>({T, B, I}), r = xt::zeros<float>({T * B, H});
        for (std::size_t s = 0; s < T; ++s) {
            std::copy(xs[s].begin(), xs[s].end(), x.begin() + static_cast<std::ptrdiff_t>(s * B * I));
            std::copy(rs[s].begin(), rs[s].end(), r.begin() + static_cast<std::ptrdiff_t>(s * B * H));
        }
        const auto states = nn::unroll(t, cell, t.input(x), cell.initial_state(t, B));
        std::vector<sg::expr> hs;
        for (const auto& st : states) hs.push_back(st.h);
        return sg::sum(sg::reshape(nn::stack_steps(hs), {T * B, H}) * t.input(r));
    }
    std::vector<sg::expr> inputs;
    for (std::size_t s = 0; s < T; ++s) {
        sg::step_scope scope(t, static_cast<int>(s));
        inputs.push_back(t.input(xs[s]));
    }
    const auto states = nn::unroll(t, cell, std::span<const sg::expr>(inputs));
    sg::expr loss;
    for (std::size_t s = 0; s < T; ++s) {
        sg::expr term;
        {
            sg::step_scope scope(t, static_cast<int>(s));
            term = sg::sum(states[s].h * t.input(rs[s]));
        }
        loss = s == 0 ? term : loss + term;  // the running total is untimed
    }
    return loss;
}

int run(const char* prefix, bool fused, int reps) {
    std::mt19937_64 rng(5);
    sg::parameter_store ps;
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), I, H, rng);
    std::vector<xt::xarray<float>> xs, rs;
    for (std::size_t s = 0; s < T; ++s) {
        xs.push_back(random_array({B, I}, rng));
        rs.push_back(random_array({B, H}, rng));
    }
    sg::tape t;
    const auto f0 = clock_type::now();
    const sg::expr loss = forward(t, cell, fused, xs, rs);
    const double forward_ms = ms_since(f0);

    double cpu_of_last = 0;
    auto backward = [&](std::size_t threads, const sg::backward_plan& plan, sg::backward_stats* st = nullptr) {
        sg::set_num_threads(threads);
        ps.zero_grad();
        const double c0 = cpu_ms();
        const auto t0 = clock_type::now();
        const auto s = t.backward(loss, plan);
        const double ms = ms_since(t0);
        cpu_of_last = cpu_ms() - c0;
        if (st) *st = s;
        return ms;
    };
    const sg::backward_plan plan = sg::truncate_bptt(K);
    // Warm-up: the first passes grow the arenas.
    backward(1, plan);
    backward(2, plan);
    backward(1, {});
    std::vector<double> one, two, full, busy;  // busy: CPU time / wall time of the 2-thread passes
    bool equal = true, parallel_ran = true;
    std::size_t windows = 0;
    for (int r = 0; r < reps; ++r) {
        sg::backward_stats st1, st2;
        one.push_back(backward(1, plan, &st1));
        const auto g1 = gradient_bytes(ps);
        two.push_back(backward(2, plan, &st2));
        busy.push_back(cpu_of_last / two.back());
        const auto g2 = gradient_bytes(ps);
        equal = equal && g1 == g2;
        parallel_ran = parallel_ran && st2.parallel && !st1.parallel;
        windows = st2.windows;
        if (r % 3 == 0) full.push_back(backward(1, {}));
    }
    const double b1 = *std::min_element(one.begin(), one.end()), b2 = *std::min_element(two.begin(), two.end());
    std::printf(
        "# %s: %zu steps, hidden %zu, batch %zu, input %zu; truncate_bptt(%zu): %zu windows%s; forward %.1f ms, %zu nodes\n",
        fused ? "nn::lstm_cell + nn::unroll over the sequence (fused layer)" : "nn::lstm_cell + nn::unroll (composed)",
        T, H, B, I, K, windows, parallel_ran ? ", run as parallel passes" : ", NOT run as parallel passes", forward_ms,
        t.size());
    std::printf("bench %s.backward_ms_1thread %.2f ms\n", prefix, b1);
    std::printf("bench %s.backward_ms_2threads %.2f ms\n", prefix, b2);
    std::printf("bench %s.window_parallel_speedup %.3f x\n", prefix, b1 / b2);
    std::printf("bench %s.bitwise_equal %d\n", prefix, equal ? 1 : 0);
    std::printf("bench %s.full_bptt_ms %.2f ms\n", prefix, *std::min_element(full.begin(), full.end()));
    // How many cores the 2-thread passes kept busy (CPU time over wall time, best pass): near 2
    // when both threads ran, near 1 when the machine had only one core to give.
    std::printf("bench %s.cores_busy_2threads %.2f cores\n", prefix, *std::max_element(busy.begin(), busy.end()));
    std::fflush(stdout);
    return equal ? 0 : 1;
}

const char* const usage = "usage: tbptt [--layer fused|composed|both] [--reps N]\n";

struct options {
    std::string layer = "both";
    int reps = 9;
};

options parse_args(int argc, char** argv) {
    options o;
    cli::parse_options(argc, argv,
                       {{"--layer", cli::one_of(o.layer, {"fused", "composed", "both"})},
                        {"--reps", cli::number(o.reps, 1)}},
                       usage);
    return o;
}

int run_all(const options& o) {
    const std::string& layer = o.layer;
    const int reps = o.reps;
    std::printf("bench blas.core %s\n", sg::blas_core_name());
    int status = 0;
    if (layer != "fused") status |= run("tbptt", false, reps);
    if (layer != "composed") status |= run("tbptt_fused", true, reps);
    return status;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("tbptt", argc, argv, parse_args, run_all); }
