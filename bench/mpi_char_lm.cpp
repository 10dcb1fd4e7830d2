// Data-parallel training across MPI ranks (core/distributed.hpp) on char_lm's model with its
// default sizes (embedding V x 64 -> LSTM 128 -> linear 128 x V, uniform random tokens, T = 64, no
// dropout), batch 32 streams per rank (global batch 32 x ranks), Adam, float32.
//
//     mpirun --oversubscribe -np 2 ./build/mpi_char_lm          # also: -np 1, or no mpirun
//     mpi_char_lm --steps 20 --blocks 4 --bucket-kb 256
//     mpi_char_lm --vocab 10000 --embed 256 --hidden 256 --seq 35   # the word-level LM, random tokens
//
// Blocks of --steps steps alternate between two ways of summing the gradients, so that both see
// the same machine load:
//   overlap: reducer::attach before backward; buckets leave while backward runs, finish() waits;
//   after:   backward first, then reducer::reduce_store (nothing overlaps), preceded by a barrier
//            timed apart, so that waiting for a slower rank is not counted as communication.
// Per mode: global tokens per second (best block), the time blocked in finish()/reduce_store() per
// step, and its share of the step. With the "after" mode's reduce time as the cost of the
// communication, overlapped = 1 - (overlap mode's exposed wait - after mode's barrier wait) /
// (after mode's reduce time), clamped to [0, 1]: the share of communication hidden behind backward.
// reduce_ms_alone: the reduction timed alone (barrier, then reduce_store; no training around it).
// Prints `bench mpi_char_lm.<name> <value>` lines from rank 0.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/core/distributed.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/text.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

#include "examples/cli.hpp"

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace dist = seqgrad::dist;
namespace cli = seqgrad::cli;
using clock_type = std::chrono::steady_clock;

namespace {

std::size_t E = 64, H = 128, T = 64, B = 32;

struct model {
    sg::parameter_store ps;
    nn::embedding emb;
    nn::lstm_cell cell;
    nn::linear out;
    model(std::size_t V, std::mt19937_64&& rng)
        : emb(sg::parameter_scope(ps, "emb"), V, E, rng),
          cell(sg::parameter_scope(ps, "lstm0"), E, H, rng),
          out(sg::parameter_scope(ps, "out"), H, V, true, rng) {}
};

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct block_result {
    double step = 0, wait = 0, barrier = 0;  // seconds per step, on this rank
    std::size_t ready = 0;                   // buckets sent before backward ended, in all steps
};

const char* const usage = R"(usage: mpi_char_lm [options]   (under mpirun -np N, or alone)
  --steps N       steps per block (10)
  --blocks N      blocks per way of summing the gradients (6)
  --bucket-kb N   gradient bucket size in KiB (64)
  --vocab N       vocabulary size of the random tokens (65, char_lm's on tinyshakespeare)
  --embed N       embedding size (64)
  --hidden N      LSTM hidden size (128)
  --seq N         steps per batch, T (64)
  --batch N       streams per rank, B (32)
)";

constexpr std::size_t token_count = 200000;  // the random tokens every rank draws

struct options {
    std::size_t steps = 10, blocks = 6, bucket_kb = 64, vocab = 65;
};

// Sets the sizes E, H, T and B too. A bad value is a usage error naming the option (strtoull once
// made "abc" and "0" a silent 1, and a missing value was ignored).
options parse_args(int argc, char** argv) {
    options o;
    const std::size_t one = 1;
    cli::parse_options(argc, argv,
                       {{"--steps", cli::number(o.steps, one)},
                        {"--blocks", cli::number(o.blocks, one)},
                        {"--bucket-kb", cli::number(o.bucket_kb, one)},
                        {"--vocab", cli::number(o.vocab, one)},
                        {"--embed", cli::number(E, one)},
                        {"--hidden", cli::number(H, one)},
                        {"--seq", cli::number(T, one)},
                        {"--batch", cli::number(B, one)}},
                       usage);
    // Each stream needs a token and its target (lm_batcher), a token id must fit an int, and
    // --bucket-kb * 1024 bytes must not wrap around.
    if (B >= token_count)
        throw cli::usage_error{"--batch: expected an integer < " + std::to_string(token_count) + ", got '" +
                               std::to_string(B) + "'"};
    if (o.vocab > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw cli::usage_error{"--vocab: expected an integer <= " + std::to_string(std::numeric_limits<int>::max()) +
                               ", got '" + std::to_string(o.vocab) + "'"};
    cli::check_count("--bucket-kb", o.bucket_kb, 1024 / sizeof(float), "256 floats a KiB");
    return o;
}

int run(const options& o) {
    const std::size_t steps = o.steps, blocks = o.blocks, bucket_kb = o.bucket_kb;
    return dist::guard([&] {
        const dist::comm world = dist::comm::world();
        const int p = world.size();
        sg::set_blas_threads(1);
        // Uniform random tokens over char_lm's vocabulary size (65 on tinyshakespeare) or --vocab: the
        // speed does not depend on which tokens they are.
        const std::size_t v_size = o.vocab;
        std::vector<int> ids(token_count);
        std::mt19937_64 rng(3);
        for (int& i : ids) i = static_cast<int>(rng() % v_size);
        const nn::lm_batcher data(ids, B * static_cast<std::size_t>(p), T);
        model m(v_size, std::mt19937_64(1));
        dist::broadcast(m.ps, world);
        sg::optim::adam opt(m.ps, 2e-3);
        dist::reducer red(m.ps, world, bucket_kb * 1024);
        const dist::sampler smp(B * static_cast<std::size_t>(p), world, 1);
        std::size_t step = 0;
        std::vector<std::size_t> mine;
        xt::xarray<double> h, c;

        auto run_block = [&](bool overlap) {
            block_result r;
            world.barrier();
            const auto t0 = clock_type::now();
            for (std::size_t s = 0; s < steps; ++s, ++step) {
                const std::size_t k = step % data.num_batches();
                if (k == 0 || mine.empty()) {
                    mine = smp.indices(step / data.num_batches());
                    h = c = xt::zeros<double>({mine.size(), H});
                }
                const nn::lm_batch b = data.get(k);
                const auto ids = dist::select_streams(b.inputs, b.batch, mine);
                const auto targets = dist::select_streams(b.targets, b.batch, mine);
                sg::tape t;
                if (overlap) red.attach(t);
                const std::size_t rows = mine.size(), len = ids.size() / rows;  // the last batch is shorter
                const sg::expr x = sg::reshape(m.emb(t, ids), {len, rows, E});
                const auto states = nn::unroll(t, m.cell, x, nn::lstm_state{t.input(h), t.input(c)});
                h = t.value(states.back().h);
                c = t.value(states.back().c);
                const auto hs = nn::hiddens(states);
                const sg::expr logits = sg::matmul_add(m.out.bias, sg::reshape(nn::stack_steps(hs), {len * rows, H}),
                                                       sg::T(m.out.weight));
                t.backward(sg::cross_entropy(logits, targets, sg::reduction::mean));
                const double before = red.statistics().wait_seconds;
                const std::size_t ready_before = red.statistics().ready_in_backward;
                if (overlap) {
                    red.finish();
                } else {
                    const auto tb = clock_type::now();
                    world.barrier();
                    r.barrier += seconds_since(tb);
                    red.reduce_store();
                }
                r.wait += red.statistics().wait_seconds - before;
                r.ready += red.statistics().ready_in_backward - ready_before;
                sg::optim::clip_global_norm(m.ps, 5);
                opt.step();
            }
            r.step = seconds_since(t0) / static_cast<double>(steps);
            r.wait /= static_cast<double>(steps);
            r.barrier /= static_cast<double>(steps);
            return r;
        };

        run_block(true);  // warm-up: arenas, buckets, MPI connections
        run_block(false);
        block_result best[2];
        double wait_sum[2] = {0, 0}, barrier_sum[2] = {0, 0}, step_sum[2] = {0, 0};
        std::size_t ready = 0;
        for (std::size_t k = 0; k < 2 * blocks; ++k) {
            const int mode = static_cast<int>(k % 2);  // 0 overlap, 1 after
            const block_result r = run_block(mode == 0);
            step_sum[mode] += r.step;
            wait_sum[mode] += r.wait;
            barrier_sum[mode] += r.barrier;
            ready += r.ready;
            if (best[mode].step == 0 || r.step < best[mode].step) best[mode] = r;
        }
        const bool same = dist::identical(m.ps, world);
        // The reduction alone, with no training around it: what the transfer costs on this machine.
        double alone = 0;
        for (std::size_t k = 0; k < 4 * steps; ++k) {
            world.barrier();
            const double before = red.statistics().wait_seconds;
            red.reduce_store();
            alone += red.statistics().wait_seconds - before;
        }
        m.ps.zero_grad();
        alone = dist::sum(alone, world) / (4.0 * static_cast<double>(steps) * p);
        // Means over blocks and ranks.
        const double n = static_cast<double>(blocks) * p;
        double mean_step[2], mean_wait[2], mean_barrier[2];
        for (int mode = 0; mode < 2; ++mode) {
            mean_step[mode] = dist::sum(step_sum[mode], world) / n;
            mean_wait[mode] = dist::sum(wait_sum[mode], world) / n;
            mean_barrier[mode] = dist::sum(barrier_sum[mode], world) / n;
        }
        const double best_step[2] = {dist::sum(best[0].step, world) / p, dist::sum(best[1].step, world) / p};
        const double tokens = static_cast<double>(T * B) * p;
        const double comm = mean_wait[1];  // the reduce alone, after the barrier
        const double exposed = std::max(0.0, mean_wait[0] - mean_barrier[1]);
        const double hidden = comm > 0 ? std::clamp(1.0 - exposed / comm, 0.0, 1.0) : 0.0;
        if (world.rank() == 0) {
            const auto& st = red.statistics();
            std::printf(
                "ranks %d, threads per rank %zu, batch %zu per rank (global %zu), T %zu, %zu parameters, "
                "%zu buckets of <= %zu KiB, %zu gradient bytes per step, %zu x %zu steps per mode\n",
                p, sg::num_threads(), B, B * static_cast<std::size_t>(p), T, m.ps.num_elements(), st.buckets, bucket_kb,
                st.bytes, blocks, steps);
            std::printf("bench mpi_char_lm.tokens_per_s_overlap %.0f\n", tokens / best_step[0]);
            std::printf("bench mpi_char_lm.tokens_per_s_after %.0f\n", tokens / best_step[1]);
            std::printf("bench mpi_char_lm.step_ms_overlap %.2f\n", 1e3 * mean_step[0]);
            std::printf("bench mpi_char_lm.step_ms_after %.2f\n", 1e3 * mean_step[1]);
            std::printf("bench mpi_char_lm.wait_ms_overlap %.3f\n", 1e3 * mean_wait[0]);
            std::printf("bench mpi_char_lm.barrier_ms_after %.3f\n", 1e3 * mean_barrier[1]);
            std::printf("bench mpi_char_lm.reduce_ms_after %.3f\n", 1e3 * comm);
            std::printf("bench mpi_char_lm.reduce_ms_alone %.3f\n", 1e3 * alone);
            std::printf("bench mpi_char_lm.comm_fraction_after %.4f\n", comm / mean_step[1]);
            std::printf("bench mpi_char_lm.comm_fraction_overlap %.4f\n", mean_wait[0] / mean_step[0]);
            std::printf("bench mpi_char_lm.overlapped %.3f\n", hidden);
            std::printf("bench mpi_char_lm.buckets_sent_during_backward %.2f of %zu\n",
                        static_cast<double>(ready) / static_cast<double>(blocks * steps), st.buckets);
            std::printf("bench mpi_char_lm.bitwise_identical %d\n", same ? 1 : 0);
        }
        return same ? 0 : 1;
    });
}

}  // namespace

int main(int argc, char** argv) {
    // The command line is checked before MPI starts: a usage error then takes no MPI start-up (0.4 s alone).
    return cli::main("mpi_char_lm", argc, argv, parse_args, [&](const options& o) {
        dist::environment env(argc, argv);
        return run(o);
    });
}
