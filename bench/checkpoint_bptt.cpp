// Memory-bounded BPTT: full backpropagation through a long LSTM run, with and without
// sg::checkpoint_bptt (values of the steps kept for one segment at a time and recomputed during
// backward). One forward + backward per process, so that peak RSS belongs to one configuration:
//
//     /usr/bin/time -v ./build/checkpoint_bptt                      # plain BPTT
//     /usr/bin/time -v ./build/checkpoint_bptt --segment 100        # checkpointed
//
// The model: nn::lstm_cell (input 32, hidden 256) unrolled over --steps (10,000) steps at batch
// 16 from a [T, B, 32] input, loss = sum over steps of sum(h_t * r_t) with fixed random r_t (built
// as the steps go, so that only one scalar per step outlives its step). Prints the loss, a checksum
// of every parameter gradient (equal between the two runs up to the order of the weight-gradient
// sums; bitwise with --no-opt), forward and backward seconds, and the peak RSS (getrusage).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
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

namespace {
double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
const char* const usage =
    "usage: checkpoint_bptt [--steps T] [--segment S] [--batch B] [--hidden H] [--no-opt] [--f64]\n"
    "  --segment 0 (the default): plain BPTT\n";

struct options {
    std::size_t steps = 10000, segment = 0, batch = 16, hidden = 256;
    bool opt = true, f64 = false;
};

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--steps", cli::number(o.steps, one)},
                        {"--segment", cli::number(o.segment, std::size_t{0})},
                        {"--batch", cli::number(o.batch, one)},
                        {"--hidden", cli::number(o.hidden, one)}},
                       usage, {{"--no-opt", [&] { o.opt = false; }}, {"--f64", [&] { o.f64 = true; }}});
    if (o.steps > static_cast<std::size_t>(std::numeric_limits<int>::max()))  // step scopes are ints
        throw cli::usage_error{"--steps: expected at most " + std::to_string(std::numeric_limits<int>::max()) +
                               ", got " + std::to_string(o.steps)};
    return o;
}

int run(const options& o) {
    const std::size_t steps = o.steps, segment = o.segment, batch = o.batch, hidden = o.hidden, in = 32;
    const bool opt = o.opt, f64 = o.f64;
    sg::set_num_threads(1);
    sg::set_graph_optimizations(opt);
    const sg::dtype dt = f64 ? sg::dtype::f64 : sg::dtype::f32;
    sg::parameter_store ps(dt);
    std::mt19937_64 rng(5);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), in, hidden, rng);
    xt::xarray<double> x = xt::zeros<double>({steps, batch, in});
    std::normal_distribution<double> d(0.0, 1.0);
    for (auto& v : x) v = d(rng);
    xt::xarray<double> r = xt::zeros<double>({batch, hidden});
    for (auto& v : r) v = d(rng) / std::sqrt(double(steps));

    sg::tape t(dt);
    if (segment) t.set_plan(sg::checkpoint_bptt(segment));
    const auto t0 = std::chrono::steady_clock::now();
    const sg::expr xs = t.input(x), rr = t.input(r);
    sg::expr loss = t.constant(0.0);
    std::vector<sg::expr> steps_in = nn::unstack_steps(xs);
    nn::lstm_state s = cell.initial_state(t, batch);
    for (std::size_t k = 0; k < steps; ++k) {
        const auto one = nn::unroll(t, cell, std::span<const sg::expr>(&steps_in[k], 1), s, static_cast<int>(k));
        s = one[0];
        sg::expr term;
        {
            sg::step_scope scope(t, static_cast<int>(k));
            term = sg::sum(s.h * rr);
        }
        loss = loss + term;
    }
    const double fwd = seconds_since(t0);
    const double value = t.item(loss);
    const auto t1 = std::chrono::steady_clock::now();
    t.backward(loss);
    const double bwd = seconds_since(t1);
    double checksum = 0;
    for (std::size_t i = 0; i < ps.size(); ++i) {
        if (f64)
            for (double v : ps[i].grad<double>()) checksum += v * v;
        else
            for (float v : ps[i].grad<float>()) checksum += double(v) * v;
    }
    std::printf("checkpoint_bptt: steps %zu, batch %zu, hidden %zu, segment %zu (%s), %s, optimisations %s\n", steps,
                batch, hidden, segment, segment ? "checkpointed" : "plain BPTT", f64 ? "float64" : "float32",
                opt ? "on" : "off");
    std::printf("bench checkpoint_bptt.loss %.17g\n", value);
    std::printf("bench checkpoint_bptt.grad_sq_sum %.17g\n", checksum);
    std::printf("bench checkpoint_bptt.forward_s %.3f\n", fwd);
    std::printf("bench checkpoint_bptt.backward_s %.3f\n", bwd);
    std::printf("bench checkpoint_bptt.total_s %.3f\n", fwd + bwd);
    std::printf("bench checkpoint_bptt.peak_rss_mb %.1f\n", peak_rss_mb());
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("checkpoint_bptt", argc, argv, parse_args, run); }
