// Streaming truncated BPTT keeps memory flat: a small character LSTM (embedding 16 x 8 -> LSTM
// 32 -> linear 32 x 16) trained on one stream of 100,000 steps with sg::tbptt_stream and
// k1 = k2 = 50: forward 50 steps, backward, Adam update, carry (h, c) into the next chunk as
// values. One tape serves every chunk (begin() clears it and keeps its memory).
//
// The stream repeats a fixed random pattern of 23 tokens with 10% of the tokens replaced by random
// ones, so the loss falls well below log(16) = 2.77 nats as the model learns the pattern.
//
// Peak resident memory (getrusage ru_maxrss) is printed at 10%, 50% and 100% of the stream; flat
// means the process at the end of the stream holds no more than after the first tenth. Run it
// under /usr/bin/time -v for the kernel's own "Maximum resident set size".
//
//     tbptt_memory                   # 100,000 steps, k = 50
//     tbptt_memory --steps 20000 --k 100
//
// Also checks that an expr of a chunk the stream has moved past cannot be used (graph_error).
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "examples/cli.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;

namespace {

constexpr std::size_t V = 16, E = 8, H = 32;

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

double current_rss_mb() {
    long pages = 0, resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(resident) * 4096.0 / (1024.0 * 1024.0);
}

const char* const usage = "usage: tbptt_memory [--steps N] [--k K] (N >= 10 K, N <= 10^9)\n";

struct options {
    std::size_t steps = 100000, k = 50;
};

options parse_args(int argc, char** argv) {
    options o;
    cli::parse_options(argc, argv,
                       {{"--steps", cli::number(o.steps, std::size_t{1})}, {"--k", cli::number(o.k, std::size_t{1})}},
                       usage);
    // The stream holds steps + 1 tokens; a count near 2^64 would wrap that to none.
    if (o.steps > 1'000'000'000)
        throw cli::usage_error{"--steps: expected at most 1000000000, got " + std::to_string(o.steps)};
    if (o.steps / 10 < o.k)
        throw cli::usage_error{"--steps " + std::to_string(o.steps) + " with --k " + std::to_string(o.k) +
                               ": expected steps >= 10 k"};
    return o;
}

int run(const options& o) {
    const std::size_t steps = o.steps, k = o.k;
    sg::set_blas_threads(1);
    sg::set_num_threads(1);

    // The stream: a repeated pattern with noise.
    std::mt19937_64 rng(9);
    std::uniform_int_distribution<int> token(0, static_cast<int>(V) - 1);
    std::bernoulli_distribution noisy(0.1);
    std::vector<int> pattern(23);
    for (int& p : pattern) p = token(rng);
    std::vector<int> stream(steps + 1);
    for (std::size_t i = 0; i <= steps; ++i) stream[i] = noisy(rng) ? token(rng) : pattern[i % pattern.size()];

    sg::parameter_store ps;
    nn::embedding emb(sg::parameter_scope(ps, "emb"), V, E, rng);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), E, H, rng);
    nn::linear out(sg::parameter_scope(ps, "out"), H, V, true, rng);
    sg::optim::adam opt(ps, 1e-2);

    std::printf("# stream of %zu steps, truncate k1 = k2 = %zu (%zu chunks), LSTM %zu, batch 1\n", steps, k,
                (steps + k - 1) / k, H);
    std::printf("# peak RSS before training %.1f MB\n", peak_rss_mb());
    sg::tbptt_stream ts;
    const std::size_t marks[3] = {steps / 10, steps / 2, steps};
    const char* mark_names[3] = {"10pct", "50pct", "100pct"};
    double peak[3] = {0, 0, 0};
    std::size_t next_mark = 0;
    double loss_sum = 0;
    std::size_t loss_n = 0;
    sg::expr first_chunk_h;
    bool stale_error = false;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t pos = 0; pos < steps; pos += k) {
        const std::size_t n = std::min(k, steps - pos);
        auto carried = ts.begin();
        if (ts.chunks() == 2) {
            try {
                (void)sg::tanh(first_chunk_h);  // an expr of the cleared first chunk
            } catch (const sg::graph_error&) {
                stale_error = true;
            }
        }
        sg::tape& t = ts.tape();
        const nn::lstm_state s0 = carried.empty() ? cell.initial_state(t, 1) : nn::lstm_state{carried[0], carried[1]};
        const std::vector<int> in(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                  stream.begin() + static_cast<std::ptrdiff_t>(pos + n)),
            tg(stream.begin() + static_cast<std::ptrdiff_t>(pos + 1),
               stream.begin() + static_cast<std::ptrdiff_t>(pos + n + 1));
        const sg::expr x = sg::reshape(sg::gather_rows(t.param(emb.weight), in), {n, 1, E});
        const std::vector<nn::lstm_state> states = nn::unroll(t, cell, x, s0);
        const sg::expr logits = sg::matmul_add(out.bias, sg::reshape(nn::stack_steps(nn::hiddens(states)), {n, H}),
                                               sg::T(out.weight));
        const sg::expr loss = sg::cross_entropy(logits, tg, sg::reduction::mean);
        t.backward(loss);
        opt.step();
        const nn::lstm_state& last = states.back();
        ts.carry({last.h, last.c});
        if (ts.chunks() == 1) first_chunk_h = last.h;
        loss_sum += t.item(loss);
        ++loss_n;
        while (next_mark < 3 && pos + n >= marks[next_mark]) {
            peak[next_mark] = peak_rss_mb();
            std::printf(
                "# %6zu steps (%s): peak RSS %.2f MB, current RSS %.2f MB, tape %zu nodes, %.1f KB reserved, "
                "mean loss since last report %.3f nats, %.1f s\n",
                pos + n, mark_names[next_mark], peak[next_mark], current_rss_mb(), t.size(),
                static_cast<double>(t.bytes_reserved()) / 1024.0, loss_sum / static_cast<double>(loss_n),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            loss_sum = 0;
            loss_n = 0;
            ++next_mark;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int m = 0; m < 3; ++m) std::printf("bench tbptt_memory.peak_rss_mb_at_%s %.2f MB\n", mark_names[m], peak[m]);
    std::printf("bench tbptt_memory.growth_10_to_100pct_mb %.2f MB\n", peak[2] - peak[0]);
    std::printf("bench tbptt_memory.steps_per_s %.0f steps/s\n", static_cast<double>(steps) / seconds);
    std::printf("bench tbptt_memory.stale_chunk_error %d\n", stale_error ? 1 : 0);
    return stale_error ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("tbptt_memory", argc, argv, parse_args, run); }
