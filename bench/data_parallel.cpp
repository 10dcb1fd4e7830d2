// Data-parallel training within one process: a character LM (embedding 65 x 32 -> LSTM 128 ->
// linear 128 x 65, softmax cross-entropy) on random tokens, sequences of 64, batch 32 split into
// --parts parts (2), one tape per part through sg::data_parallel, gradients reduced in part order,
// one Adam update per step. Tokens per second with the executor on 1 thread and on 2.
//
// Both settings do exactly the same arithmetic (the same parts, reduced in the same order), so
// their parameters stay bitwise equal step after step; the bench checks that too. Blocks of steps
// alternate between 1 and 2 threads so that both see the same machine load; the best block of
// each is reported. For reference, the same training with the whole batch on one tape and one
// thread (no data_parallel) is timed as well.
//
//     data_parallel                  # parts 2, 8 blocks of 10 steps per setting
//     data_parallel --parts 4 --blocks 12 --steps 10
//
// Prints bench data_parallel.tokens_per_s_1thread, tokens_per_s_2threads, speedup,
// tokens_per_s_one_tape, speedup_vs_one_tape and bitwise_equal.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t V = 65, E = 32, H = 128, T = 64, B = 32;

struct char_lm {
    sg::parameter_store ps;
    nn::embedding emb;
    nn::lstm_cell cell;
    nn::linear out;
    explicit char_lm(std::mt19937_64& rng)
        : emb(sg::parameter_scope(ps, "emb"), V, E, rng),
          cell(sg::parameter_scope(ps, "lstm"), E, H, rng),
          out(sg::parameter_scope(ps, "out"), H, V, true, rng) {}

    // Summed cross-entropy of rows [b0, b1) of a time-major batch (entry (t, b) at t * B + b),
    // divided by the tokens of the whole batch: the parts' losses add up to the batch mean.
    sg::expr loss(sg::tape& t, const std::vector<int>& inputs, const std::vector<int>& targets, std::size_t b0,
                  std::size_t b1) const {
        const std::size_t n = b1 - b0;
        std::vector<int> in(T * n), tg(T * n);
        for (std::size_t s = 0; s < T; ++s)
            for (std::size_t b = b0; b < b1; ++b) {
                in[s * n + b - b0] = inputs[s * B + b];
                tg[s * n + b - b0] = targets[s * B + b];
            }
        // The cell through nn::unroll; the engine multiplies the 65-row table by W_ih (table products).
        const sg::expr x = sg::reshape(sg::gather_rows(t.param(emb.weight), in), {T, n, E});
        const auto hs = nn::hiddens(nn::unroll(t, cell, x, cell.initial_state(t, n)));
        const sg::expr logits = sg::matmul_add(out.bias, sg::reshape(nn::stack_steps(hs), {T * n, H}),
                                               sg::T(out.weight));
        return sg::cross_entropy(logits, tg, sg::reduction::sum) * (1.0 / static_cast<double>(T * B));
    }
};

std::vector<char> parameter_bytes(const sg::parameter_store& ps) {
    std::vector<char> out;
    for (const auto& p : ps.parameters()) {
        const auto& v = p.value<float>();
        const char* b = reinterpret_cast<const char*>(v.data());
        out.insert(out.end(), b, b + v.size() * sizeof(float));
    }
    return out;
}

const char* const usage = "usage: data_parallel [--parts N (dividing 32)] [--blocks N] [--steps N]\n";

struct options {
    std::size_t parts = 2, blocks = 8, steps = 10;
};

options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--parts", cli::number(o.parts, one)},
                        {"--blocks", cli::number(o.blocks, one)},
                        {"--steps", cli::number(o.steps, one)}},
                       usage);
    if (B % o.parts != 0)
        throw cli::usage_error{"--parts: expected a divisor of the batch, " + std::to_string(B) + ", got " +
                               std::to_string(o.parts)};
    if (o.blocks > 100000 || o.steps > 100000)  // 3 * blocks * steps + 6 batches of tokens are made up front
        throw cli::usage_error{std::string(o.blocks > 100000 ? "--blocks" : "--steps") + ": expected at most 100000"};
    return o;
}

int run(const options& o) {
    const std::size_t parts = o.parts, blocks = o.blocks, steps = o.steps;
    sg::set_blas_threads(1);
    std::printf("bench blas.core %s\n", sg::blas_core_name());

    // Random tokens: the arithmetic per step does not depend on what the text says.
    std::mt19937_64 data_rng(11);
    std::uniform_int_distribution<int> token(0, static_cast<int>(V) - 1);
    const std::size_t total_steps = 3 * blocks * steps + 6;
    std::vector<std::vector<int>> inputs(total_steps, std::vector<int>(T * B)), targets = inputs;
    for (std::size_t k = 0; k < total_steps; ++k)
        for (std::size_t i = 0; i < T * B; ++i) inputs[k][i] = token(data_rng), targets[k][i] = token(data_rng);

    // Three copies of the same model: 1 thread and 2 threads through data_parallel, and one tape.
    std::mt19937_64 r1(3), r2(3), r3(3);
    char_lm m1(r1), m2(r2), m3(r3);
    sg::optim::adam o1(m1.ps, 2e-3), o2(m2.ps, 2e-3), o3(m3.ps, 2e-3);
    std::size_t next1 = 0, next2 = 0, next3 = 0;
    auto parallel_step = [&](char_lm& m, sg::optim::adam& opt, std::size_t k) {
        const double loss = sg::data_parallel(parts, [&](sg::tape& t, std::size_t p) {
            return m.loss(t, inputs[k], targets[k], p * B / parts, (p + 1) * B / parts);
        });
        opt.step();
        return loss;
    };
    sg::tape whole;
    auto one_tape_step = [&](std::size_t k) {
        whole.clear();
        const sg::expr loss = m3.loss(whole, inputs[k], targets[k], 0, B);
        whole.backward(loss);
        o3.step();
        return whole.item(loss);
    };
    // A block of `steps` training steps; returns tokens per second.
    auto block = [&](int which) {
        const auto t0 = clock_type::now();
        for (std::size_t s = 0; s < steps; ++s) {
            if (which == 1) {
                sg::set_num_threads(1);
                parallel_step(m1, o1, next1++);
            } else if (which == 2) {
                sg::set_num_threads(2);
                parallel_step(m2, o2, next2++);
            } else {
                sg::set_num_threads(1);
                one_tape_step(next3++);
            }
        }
        const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
        return static_cast<double>(steps * T * B) / s;
    };
    // Warm-up: two steps each (the first allocates).
    for (int w = 0; w < 2; ++w) {
        sg::set_num_threads(1);
        parallel_step(m1, o1, next1++);
        sg::set_num_threads(2);
        parallel_step(m2, o2, next2++);
        sg::set_num_threads(1);
        one_tape_step(next3++);
    }
    std::vector<double> tps1, tps2, tps3;
    for (std::size_t b = 0; b < blocks; ++b) {
        tps1.push_back(block(1));
        tps2.push_back(block(2));
        tps3.push_back(block(3));
    }
    const bool equal = parameter_bytes(m1.ps) == parameter_bytes(m2.ps);
    const double best1 = *std::max_element(tps1.begin(), tps1.end()),
                 best2 = *std::max_element(tps2.begin(), tps2.end()),
                 best3 = *std::max_element(tps3.begin(), tps3.end());
    std::printf(
        "# char LM V %zu, E %zu, LSTM %zu, seq %zu, batch %zu in %zu parts; %zu blocks of %zu steps per setting\n", V,
        E, H, T, B, parts, blocks, steps);
    std::printf("bench data_parallel.tokens_per_s_1thread %.0f tokens/s\n", best1);
    std::printf("bench data_parallel.tokens_per_s_2threads %.0f tokens/s\n", best2);
    std::printf("bench data_parallel.speedup %.3f x\n", best2 / best1);
    std::printf("bench data_parallel.tokens_per_s_one_tape %.0f tokens/s\n", best3);
    std::printf("bench data_parallel.speedup_vs_one_tape %.3f x\n", best2 / best3);
    std::printf("bench data_parallel.bitwise_equal %d\n", equal ? 1 : 0);
    return equal ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("data_parallel", argc, argv, parse_args, run); }
