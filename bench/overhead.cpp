// Tape overhead and matmul efficiency.
//   overhead: build and backpropagate a chain of 100,000 small nodes (add and tanh on [1, 16]),
//             the regime where the allocator and bookkeeping, not arithmetic, decide the speed;
//   pointwise: an LSTM step's pointwise backward with activations folded into their readers and not;
//   matmul512: 512x512 float matmul through the op vs a direct cblas_sgemm in the same run.
// Prints `bench <name> <value> <unit>` lines. Each figure is the median of several repetitions.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <cblas.h>

#include <seqgrad/seqgrad.hpp>

#include "bench/median.hpp"

using seqgrad::bench::median;

namespace sg = seqgrad;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
    // No options: --help prints the usage, anything else is refused (exit 2) rather than ignored
    // by a run that takes a while.
    if (argc > 1) {
        const std::string a = argv[1];
        if (a == "--help" || a == "-h") {
            std::printf("usage: overhead (no options)\n");
            return 0;
        }
        std::fprintf(stderr, "overhead: unknown option '%s' (usage: overhead, no options)\n", a.c_str());
        return 2;
    }
    std::printf("bench blas.core %s\n", sg::blas_core_name());
    std::printf("bench blas.threads %d\n", sg::blas_threads());

    // ---- tape overhead ----
    const int nodes = 100000;
    sg::tape t(sg::dtype::f32);
    xt::xarray<float> x0 = xt::ones<float>({1, 16}) * 0.01f;
    std::vector<double> fwd, bwd;
    for (int rep = 0; rep < 11; ++rep) {
        t.clear();
        auto start = clock_type::now();
        auto x = t.input(x0, true);
        auto h = x;
        for (int i = 0; i < nodes / 2; ++i) h = sg::tanh(h + x);
        auto loss = sg::sum(h);
        auto mid = clock_type::now();
        t.backward(loss);
        auto end = clock_type::now();
        if (rep == 0) continue;  // warm-up: first use grows the arenas
        fwd.push_back(std::chrono::duration<double, std::nano>(mid - start).count() / nodes);
        bwd.push_back(std::chrono::duration<double, std::nano>(end - mid).count() / nodes);
    }
    const double f = median(fwd), b = median(bwd);
    std::printf("bench overhead.forward_ns_per_node %.1f ns\n", f);
    std::printf("bench overhead.backward_ns_per_node %.1f ns\n", b);
    std::printf("bench overhead.total_ns_per_node %.1f ns\n", f + b);

    // ---- an LSTM step's pointwise backward, activations folded into their readers or not ----
    // split of the gates, three sigmoids and two tanh, the cell update, h; B 32, T 32, one thread;
    // the gates are inputs, so only pointwise work is timed (backward, per step).
    const std::size_t threads = sg::num_threads();
    sg::set_num_threads(1);
    for (const std::size_t hid : {std::size_t(128), std::size_t(512)}) {
        const std::size_t batch = 32, steps = 32;
        const xt::xarray<float> gv = xt::ones<float>({batch, 4 * hid}) * 0.1f,
                                cv = xt::ones<float>({batch, hid}) * 0.2f;
        std::vector<double> us[2];
        for (int rep = 0; rep < 60; ++rep)
            for (const int fold : {0, 1}) {
                sg::detail::set_activation_folding(fold != 0);
                t.clear();
                std::vector<sg::expr> gates;
                for (std::size_t k = 0; k < steps; ++k) gates.push_back(t.input(gv, true));
                sg::expr c = t.input(cv, true), loss;
                for (std::size_t k = 0; k < steps; ++k) {
                    auto q = sg::split(gates[k], 4);
                    c = sg::sigmoid(q[1]) * c + sg::sigmoid(q[0]) * sg::tanh(q[2]);
                    const sg::expr l = sg::sum(sg::sigmoid(q[3]) * sg::tanh(c));
                    loss = k ? loss + l : l;
                }
                const auto s0 = clock_type::now();
                t.backward(loss);
                const auto s1 = clock_type::now();
                if (rep >= 5) us[fold].push_back(std::chrono::duration<double, std::micro>(s1 - s0).count() / steps);
            }
        sg::detail::set_activation_folding(true);
        std::printf("bench pointwise.h%zu.backward_us_per_step.unfolded %.2f us\n", hid, median(us[0]));
        std::printf("bench pointwise.h%zu.backward_us_per_step.folded %.2f us\n", hid, median(us[1]));
        std::printf("bench pointwise.h%zu.folded_over_unfolded %.3f x\n", hid, median(us[1]) / median(us[0]));
    }
    sg::set_num_threads(threads);

    // ---- matmul 512 ----
    const std::size_t n = 512;
    xt::xarray<float> a = xt::ones<float>({n, n}) * 0.5f, bm = xt::ones<float>({n, n}) * 0.25f;
    xt::xarray<float> c = xt::zeros<float>({n, n});
    const double flop = 2.0 * n * n * n;
    std::vector<double> op_s, blas_s;
    sg::tape m(sg::dtype::f32);
    for (int rep = 0; rep < 25; ++rep) {
        m.clear();
        auto ea = m.input(a), eb = m.input(bm);  // the copies onto the tape are not timed
        auto s0 = clock_type::now();
        auto y = sg::matmul(ea, eb);
        auto s1 = clock_type::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, bm.data(), n, 0.0f, c.data(),
                    n);
        auto s2 = clock_type::now();
        (void)y;
        if (rep < 3) continue;
        op_s.push_back(std::chrono::duration<double>(s1 - s0).count());
        blas_s.push_back(std::chrono::duration<double>(s2 - s1).count());
    }
    const double op_gflops = flop / median(op_s) / 1e9, sgemm_gflops = flop / median(blas_s) / 1e9;
    std::printf("bench matmul512.op_gflops %.1f GFLOP/s\n", op_gflops);
    std::printf("bench matmul512.sgemm_gflops %.1f GFLOP/s\n", sgemm_gflops);
    std::printf("bench matmul512.ratio %.3f x\n", op_gflops / sgemm_gflops);
    return 0;
}
