// LSTM language-model training throughput, seqgrad against PyTorch in the same run.
//
// Model: embedding(V, E) -> 1-layer LSTM(E, H) -> linear(H, V) -> cross-entropy summed over T x B;
// plain SGD (lr 0.1) after global-norm clipping (5); zero initial state per batch. One training
// step is forward + backward + clipping + update, on one tape reused with clear().
// The seqgrad model is what a user writes: the looked-up rows as a [T, B, E] sequence, nn::lstm_cell
// through nn::unroll, the hidden states stacked, one output layer over all steps. The library runs
// that as a fused layer (one GEMM for the input projections of all steps, done on the embedding
// table itself when it has fewer rows than the lookup: V = 65 < T*B = 2048 for char_b32; one
// lstm_step node per step). --layer also runs, in the same rounds, the model as it was written
// before the cell got that path (nn::detail::lstm_layer::embedded and hidden_all, called by hand) and
// prints the cell's speed over it: `bench lstm_lm.<config>.t<n>.cell_over_layer` (the two take
// turns running first from round to round: whichever runs second gains a few percent; use an
// even number of rounds).
//
// word_b20_adaptive is word_b20 with nn::adaptive_softmax (cutoffs 2,000 / 10,000 = one tail
// cluster of 8,000 words projected to 64 features; div_value 4) instead of the full softmax;
// word_b20_adaptive_1k4k has a 1,000-word shortlist and clusters [1,000, 4,000) (64 features) and
// [4,000, 10,000) (16 features).
// Tokens: uniform for the character configs; for the word configs Zipf-distributed (p(k) ~ 1/(k+1)
// over ids sorted by frequency), as words are (the top 2,000 of 10,000 then cover 83% of tokens;
// on tinyshakespeare's 7,623-word vocabulary they cover 87%). The full softmax's cost does not depend
// on the distribution; the adaptive softmax's does, and uniform tokens would put 80% of them in the
// tail, which no real text does.
//
//     lstm_lm [--config NAME[,NAME...]] [--seconds 4] [--threads 1,2] [--rounds 1] [--cutoffs 2000,10000]
//             [--no-torch] [--layer] [--openblas-threads] [--no-chains] [--no-small-gemm] [--no-opt]
//
// --no-chains, --no-small-gemm and --no-opt turn one optimisation off throughout (the recurrence
// chains, the own small-product kernel, the graph optimisations), for A/B runs.
// Per config and thread count (set_num_threads(n): the executor decides what to split, BLAS
// products included; --openblas-threads instead lets OpenBLAS thread every product itself with
// set_blas_threads(n), the policy before the executor split products): `bench lstm_lm.<config>.t<n>.tokens_per_s`, the effective GFLOP/s of
// the training step (forward + backward = 3x the forward FLOPs of the GEMMs, counting for the
// adaptive softmax only the cluster rows actually evaluated), and next to it the SGEMM GFLOP/s of
// the output layer's forward product ([T*B, H] x [H, V]^T, or the adaptive head's [H, 2,001]) timed
// at the same thread count in the same run, and their ratio: a figure that does not depend on
// which kernels OpenBLAS picked. Then the 2-thread / 1-thread ratio and, for the adaptive config,
// its ratio to word_b20's tokens/s. --rounds N repeats every measurement N times in turn (configs
// alternate, so a change of machine load hits all of them): the figures are medians over rounds,
// and every ratio is the median of the ratios of figures taken in the same round.
// The PyTorch figures (bench/torch_lstm_lm.py, nn.LSTM, run as a subprocess) follow: one thread,
// `...torch_tokens_per_s`, with the ratio to seqgrad's 1-thread figure; with 2 in --threads also its
// best use of two cores (../shared/PEERS.md: its own pool at 1, OpenBLAS at 2),
// `...torch_blas2_tokens_per_s`, and `...best_over_torch_best`: seqgrad's faster thread count over
// PyTorch's faster set-up. The adaptive config has none.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <seqgrad/nn/adaptive_softmax.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/seqgrad.hpp>

#include "bench/median.hpp"
#include "examples/cli.hpp"

using seqgrad::bench::median;

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;

namespace {

struct config {
    std::string name;
    std::size_t V, E, H, T, B;
    bool adaptive = false, zipf = false;
    std::string torch_name;                 // bench/torch_lstm_lm.py's config; empty: none
    std::vector<std::size_t> cutoffs = {};  // adaptive softmax
};
config configs[] = {
    {"char_b1", 65, 128, 128, 64, 1, false, false, "char_b1"},
    {"char_b32", 65, 128, 128, 64, 32, false, false, "char_b32"},
    {"word_b20", 10000, 256, 256, 35, 20, false, true, "word_b20"},
    {"word_b20_adaptive", 10000, 256, 256, 35, 20, true, true, "", {2000, 10000}},  // --cutoffs changes it
    {"word_b20_adaptive_1k4k", 10000, 256, 256, 35, 20, true, true, "", {1000, 4000, 10000}},
};
constexpr double adaptive_div = 4.0;

xt::xarray<double> uniform(const sg::shape& s, double a, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-a, a);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) x = u(rng);
    return v;
}

struct lm {
    const config& cfg;
    sg::parameter_store ps{sg::dtype::f32};
    sg::parameter emb, w_out, b_out;
    nn::lstm_cell cell;
    nn::detail::lstm_layer layer;
    std::optional<nn::adaptive_softmax> adaptive;
    sg::optim::sgd sgd{ps, 0.1};

    lm(const config& c, std::mt19937_64& rng)
        : cfg(c),
          emb(ps.add("emb", uniform({c.V, c.E}, 1.0, rng))),
          cell(sg::parameter_scope(ps, "lstm"), c.E, c.H, rng),
          layer(cell) {
        if (c.adaptive) {
            adaptive.emplace(sg::parameter_scope(ps, "out"), c.H, c.V, c.cutoffs, adaptive_div, false, rng);
        } else {
            w_out = ps.add("out.weight", uniform({c.V, c.H}, 1.0 / std::sqrt(double(c.H)), rng));
            b_out = ps.add("out.bias", uniform({c.V}, 1.0 / std::sqrt(double(c.H)), rng));
        }
    }

    // ids and targets: T*B each, time-major (row t*B + b).
    double train_step(sg::tape& t, const std::vector<int>& ids, const std::vector<int>& targets, bool by_hand) {
        t.clear();
        sg::expr hs;  // every step's h, [T*B, H]
        if (by_hand) {
            hs = layer.embedded(t.param(emb), ids, cfg.B).hidden_all();
        } else {
            const sg::expr x = sg::reshape(sg::gather_rows(t.param(emb), ids), {cfg.T, cfg.B, cfg.E});
            const auto states = nn::unroll(t, cell, x, cell.initial_state(t, cfg.B));
            hs = sg::reshape(nn::stack_steps(nn::hiddens(states)), {cfg.T * cfg.B, cfg.H});
        }
        sg::expr loss;
        if (adaptive) {
            loss = adaptive->loss(hs, targets, sg::reduction::sum);
        } else {
            const sg::expr logits = sg::matmul_add(b_out, hs, sg::T(w_out));
            loss = sg::cross_entropy(logits, targets, sg::reduction::sum);
        }
        t.backward(loss);
        sg::optim::clip_global_norm(ps, 5.0);  // as torch.nn.utils.clip_grad_norm_
        sgd.step();                            // and zeroes the gradients
        return t.item(loss);
    }
};

struct measured {
    double tokens_per_s = 0, flops_per_token = 0;
};

// Forward FLOPs of the GEMMs per token, times 3 for forward + backward. The adaptive softmax
// counts its head for every row and a cluster's two products for the rows whose target it holds.
double flops_per_token(const config& c, const std::vector<std::vector<int>>& targets) {
    const double lstm = 2.0 * 4 * double(c.H) * double(c.E + c.H);
    if (!c.adaptive) return 3 * (lstm + 2.0 * double(c.H) * double(c.V));
    std::vector<std::size_t> cut = c.cutoffs;
    if (cut.back() == c.V) cut.pop_back();
    const double head = 2.0 * double(c.H) * double(cut[0] + cut.size());
    double tail = 0, rows = 0;
    cut.push_back(c.V);
    for (const auto& tg : targets)
        for (int w : tg) {
            rows += 1;
            for (std::size_t i = 0; i + 1 < cut.size(); ++i)
                if (std::size_t(w) >= cut[i] && std::size_t(w) < cut[i + 1]) {
                    const double hsz = std::floor(double(c.H) / std::pow(adaptive_div, double(i + 1)));
                    tail += 2.0 * hsz * (double(c.H) + double(cut[i + 1] - cut[i]));
                }
        }
    return 3 * (lstm + head + tail / rows);
}

measured seqgrad_tokens_per_s(const config& c, double seconds, bool by_hand) {
    std::mt19937_64 rng(1);
    lm model(c, rng);
    const std::size_t n = c.T * c.B;
    std::uniform_int_distribution<int> tok(0, static_cast<int>(c.V) - 1);
    std::vector<double> weights(c.V);
    for (std::size_t k = 0; k < c.V; ++k) weights[k] = 1.0 / double(k + 1);
    std::discrete_distribution<int> zipf(weights.begin(), weights.end());
    // Eight batches of T + 1 rows of tokens: ids are rows 0..T-1, targets rows 1..T.
    std::vector<std::vector<int>> ids, targets;
    for (int k = 0; k < 8; ++k) {
        std::vector<int> b(n + c.B);
        for (int& v : b) v = c.zipf ? zipf(rng) : tok(rng);
        ids.emplace_back(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        targets.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(c.B), b.end());
    }
    sg::tape t(sg::dtype::f32);
    auto step = [&](std::size_t k) { return model.train_step(t, ids[k % 8], targets[k % 8], by_hand); };
    using clock = std::chrono::steady_clock;
    double loss = 0;
    for (std::size_t k = 0; k < 3; ++k) loss = step(k);  // warm-up: arenas, BLAS buffers, caches
    std::size_t steps = 0;
    const auto start = clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        loss = step(steps++);
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    if (!std::isfinite(loss)) std::cerr << "lstm_lm." << c.name << ": loss is not finite\n";
    return {double(steps * n) / elapsed, flops_per_token(c, targets)};
}

// GFLOP/s of the output layer's forward product alone, C [T*B, N] = A [T*B, H] B[N, H]^T with N = V
// (the adaptive head's N for the adaptive config), at the current BLAS thread count.
double sgemm_gflops(const config& c, double seconds) {
    const std::size_t m = c.T * c.B, k = c.H;
    std::size_t nn = c.V;
    if (c.adaptive) {
        nn = c.cutoffs[0];
        for (std::size_t x : c.cutoffs) nn += x < c.V;  // plus one head entry per cluster
    }
    std::vector<float> a(m * k, 0.01f), b(nn * k, 0.02f), out(m * nn);
    using clock = std::chrono::steady_clock;
    sg::detail::gemm<float>(false, true, m, nn, k, 1.0f, a.data(), b.data(), 0.0f, out.data());
    std::size_t reps = 0;
    const auto start = clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        sg::detail::gemm<float>(false, true, m, nn, k, 1.0f, a.data(), b.data(), 0.0f, out.data());
        ++reps;
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    return 2.0 * double(m) * double(nn) * double(k) * double(reps) / elapsed / 1e9;
}

// Runs the PyTorch script and returns its figure, or a negative number when it did not run.
double torch_tokens_per_s(const config& c, double seconds, int blas_threads) {
    std::ostringstream secs;  // all digits: std::to_string would pass 0.000000 for a positive --seconds below 5e-7
    secs.precision(17);
    secs << seconds;
    const std::string cmd = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 " +
                            std::string(SEQGRAD_SOURCE_DIR) + "/bench/torch_lstm_lm.py --config " + c.torch_name +
                            " --seconds " + secs.str() + " --blas-threads " + std::to_string(blas_threads) + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return -1;
    double v = -1;
    char line[512];
    const std::string key = "bench lstm_lm." + c.torch_name + ".torch_tokens_per_s ";
    while (std::fgets(line, sizeof line, p)) {
        std::string s(line);
        if (s.rfind(key, 0) == 0) v = std::atof(s.c_str() + key.size());
        else std::cout << "torch: " << s;  // skip messages and errors
    }
    const int rc = pclose(p);
    return rc == 0 ? v : -1;
}

// What the machine gives this process now: the throughput of a pure compute loop on n threads
// over one thread (about n on quiet cores; near 1 when other work holds the other cores, and then
// no n-thread figure can show a gain).
double core_capacity(int n) {
    const auto rate = [](int threads) {
        std::vector<double> out(static_cast<std::size_t>(threads));
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> pool;
        for (int i = 0; i < threads; ++i)
            pool.emplace_back([&out, i] {
                double x = 1;
                for (long k = 0; k < 50'000'000; ++k) x = x * 1.0000001 + 1e-9;
                out[static_cast<std::size_t>(i)] = x;
            });
        for (auto& t : pool) t.join();
        return threads / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    return rate(n) / rate(1);
}

// Nanoseconds for one thread to see a value another thread wrote and answer it, one way: what
// a split pays each time its threads meet. The same 2-vCPU EPYC VM read 28 and 260 within an
// hour (where its two vCPUs sat on the host, presumably); whether a small split (char_b1's) pays
// moved with the host's state as much as core_capacity does.
double handoff_ns() {
    // At most 20 ms: with the other core busy, each hand-over can wait for a time slice.
    constexpr long most = 200000;
    std::atomic<long> turn{0};
    std::thread other([&turn] {
        for (long i = 1;; i += 2) {
            long v;
            while ((v = turn.load(std::memory_order_acquire)) != i && v >= 0) {}
            if (v < 0) return;
            turn.store(i + 1, std::memory_order_release);
        }
    });
    const auto start = std::chrono::steady_clock::now();
    const auto since = [&] {
        return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start);
    };
    long i = 0;
    for (; i < 2 * most && (i % 128 != 0 || since().count() < 2e7); i += 2) {
        while (turn.load(std::memory_order_acquire) != i) {}
        turn.store(i + 1, std::memory_order_release);
    }
    while (turn.load(std::memory_order_acquire) != i) {}  // the other's last answer
    const double ns = since().count() / double(std::max(i, 1L));
    turn.store(-1, std::memory_order_release);
    other.join();
    return ns;
}

// Nanoseconds a line for one thread to read 256 KB another thread has just written (one load per
// 64-byte line), and for the writer to read it again itself: what each split of a layer's rows
// pays where one thread reads what the other wrote. The same 2-vCPU EPYC VM read 0.9 and 5.4
// ns/line within minutes (local 0.9 throughout), and char_b32 on 2 threads ran 1.82-1.84 and
// 1.65-1.71 times one thread with it (presumably the two vCPUs on one core complex of the host, or two).
std::pair<double, double> cross_core_read_ns() {
    constexpr std::size_t floats = (256 << 10) / sizeof(float), line = 64 / sizeof(float);
    constexpr int reps = 100;
    std::vector<float> buf(floats, 1.f);
    std::atomic<int> turn{0};
    std::thread writer([&] {
        for (int r = 0; r < reps; ++r) {
            while (turn.load(std::memory_order_acquire) != 2 * r + 1) {}
            for (auto& v : buf) v += 1.f;
            turn.store(2 * r + 2, std::memory_order_release);
        }
    });
    double remote = 0, local = 0;
    volatile float sink = 0;
    for (int r = 0; r < reps; ++r) {
        turn.store(2 * r + 1, std::memory_order_release);
        while (turn.load(std::memory_order_acquire) != 2 * r + 2) {}
        for (double* into : {&remote, &local}) {  // the second pass reads what the first brought here
            const auto start = std::chrono::steady_clock::now();
            float s = 0;
            for (std::size_t i = 0; i < floats; i += line) s += buf[i];
            *into += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
            sink = sink + s;
        }
    }
    writer.join();
    const double lines = double(floats / line) * reps;
    return {remote / lines, local / lines};
}

std::string cross_core_read(const char* when) {
    const auto [remote, local] = cross_core_read_ns();
    std::ostringstream os;
    os << "bench lstm_lm.cross_core_read" << when << " " << remote << " ns/line (256 KB another thread just wrote; "
       << local << " ns/line read again by this one)";
    return os.str();
}

const char* const usage =
    "usage: lstm_lm [--config NAME[,NAME...]] [--seconds s] [--threads 1,2] [--rounds n] [--cutoffs 2000,10000]\n"
    "               [--no-torch] [--layer] [--openblas-threads] [--no-chains] [--no-small-gemm] [--no-opt]\n"
    "               [--no-overlap]\n"
    "  configs: char_b1, char_b32, word_b20, word_b20_adaptive, word_b20_adaptive_1k4k (all)\n";

struct options {
    std::vector<std::string> only;  // empty: every config
    double seconds = 4;
    bool torch = true, layer = false, openblas_threads = false;
    std::vector<int> threads = {1, 2};
    int rounds = 1;
};

options parse_args(int argc, char** argv) {
    options o;
    std::vector<std::string> names;
    for (const config& c : configs) names.push_back(c.name);
    std::vector<std::size_t> cutoffs = configs[3].cutoffs;
    cli::parse_options(argc, argv,
                       {{"--config", cli::list_of(o.only, names)},
                        {"--seconds", cli::number(o.seconds, 0.0, true)},
                        {"--threads", cli::number_list(o.threads, 1)},
                        {"--rounds", cli::number(o.rounds, 1)},
                        {"--cutoffs", cli::number_list(cutoffs, std::size_t{1})}},
                       usage,
                       {{"--no-torch", [&] { o.torch = false; }},
                        {"--layer", [&] { o.layer = true; }},
                        {"--openblas-threads", [&] { o.openblas_threads = true; }},
                        {"--no-chains", [] { sg::detail::set_recurrence_chains(false); }},       // per-node backward
                        {"--no-small-gemm", [] { sg::detail::set_small_gemm_kernels(false); }},  // OpenBLAS only
                        {"--no-opt", [] { sg::set_graph_optimizations(false); }},
                        {"--no-overlap", [] { sg::detail::set_gradient_overlap(false); }}});
    for (std::size_t i = 0; i < o.threads.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (o.threads[i] == o.threads[j])
                throw cli::usage_error{"--threads: " + std::to_string(o.threads[i]) + " given twice"};
    // As nn::adaptive_softmax takes them: increasing, below V, optionally ending with V.
    const std::size_t V = configs[3].V;
    bool increasing = cutoffs[0] < V;
    for (std::size_t i = 1; i < cutoffs.size(); ++i)
        increasing = increasing && cutoffs[i] > cutoffs[i - 1] && (cutoffs[i] < V || i + 1 == cutoffs.size());
    if (!increasing || cutoffs.back() > V)
        throw cli::usage_error{"--cutoffs: expected strictly increasing values below " + std::to_string(V) +
                               ", optionally ending with " + std::to_string(V)};
    configs[3].cutoffs = cutoffs;
    return o;
}

int run(const options& o) {
    const double seconds = o.seconds;
    const bool torch = o.torch, layer = o.layer, openblas_threads = o.openblas_threads;
    const std::vector<int>& threads = o.threads;
    const int rounds = o.rounds;
    std::cout << "bench blas.core " << sg::blas_core_name() << "\n";
    const int most = *std::max_element(threads.begin(), threads.end());
    if (most > 1)
        std::cout << "bench lstm_lm.core_capacity.t" << most << " " << core_capacity(most) << " x (a compute loop on "
                  << most << " threads over 1, now; " << most << " on idle cores)\n"
                  << "bench lstm_lm.handoff " << handoff_ns() << " ns (one thread answering another, one way)\n"
                  << cross_core_read("") << std::endl;
    std::vector<const config*> chosen;
    for (const config& c : configs)
        if (o.only.empty() || std::find(o.only.begin(), o.only.end(), c.name) != o.only.end()) chosen.push_back(&c);
    // Per config and thread count, every round's figures; the rounds alternate configs and counts,
    // so ratios between figures of one round compare measurements taken moments apart.
    using key_t = std::pair<std::string, int>;
    std::map<key_t, std::vector<measured>> runs;
    std::map<key_t, std::vector<double>> gemms;
    for (int r = 0; r < rounds; ++r)
        for (const config* c : chosen)
            for (int n : threads) {
                sg::set_num_threads(static_cast<std::size_t>(n));
                sg::set_blas_threads(openblas_threads ? n : 0);
                // With --layer, the two alternate which runs first from round to round.
                if (layer && r % 2 == 0)
                    runs[{c->name + "/layer", n}].push_back(seqgrad_tokens_per_s(*c, seconds, true));
                const measured m = seqgrad_tokens_per_s(*c, seconds, false);
                const double g = sgemm_gflops(*c, std::min(1.0, seconds / 4));
                runs[{c->name, n}].push_back(m);
                if (layer && r % 2 == 1)
                    runs[{c->name + "/layer", n}].push_back(seqgrad_tokens_per_s(*c, seconds, true));
                gemms[{c->name, n}].push_back(g);
                if (rounds > 1)
                    std::cout << "round " << r + 1 << " " << c->name << " t" << n << " " << m.tokens_per_s << " tok/s, "
                              << m.tokens_per_s * m.flops_per_token / 1e9 << " GFLOP/s, sgemm " << g << " GFLOP/s"
                              << std::endl;
            }
    // Median over rounds of the round-by-round ratio a / b (tokens/s).
    const auto ratio = [&](const key_t& a, const key_t& b) {
        std::vector<double> v;
        for (std::size_t r = 0; r < runs[a].size(); ++r) v.push_back(runs[a][r].tokens_per_s / runs[b][r].tokens_per_s);
        return median(v);
    };
    const auto median_tok = [&](const key_t& k) {
        std::vector<double> v;
        for (const measured& m : runs[k]) v.push_back(m.tokens_per_s);
        return median(v);
    };
    for (const config* c : chosen) {
        const std::string key = "bench lstm_lm." + c->name;
        for (int n : threads) {
            const auto& ms = runs[{c->name, n}];
            std::vector<double> tok, of;
            for (std::size_t r = 0; r < ms.size(); ++r) {
                tok.push_back(ms[r].tokens_per_s);
                of.push_back(ms[r].tokens_per_s * ms[r].flops_per_token / 1e9 / gemms[{c->name, n}][r]);
            }
            const double t = median(tok), fpt = ms[0].flops_per_token;
            const std::string k = key + ".t" + std::to_string(n);
            std::cout << k << ".tokens_per_s " << t << " tok/s (median of " << ms.size() << ", best "
                      << *std::max_element(tok.begin(), tok.end()) << ")\n"
                      << k << ".gflops " << t * fpt / 1e9 << " GFLOP/s (" << fpt / 1e6 << " MFLOP/token)\n"
                      << k << ".sgemm_gflops " << median(gemms[{c->name, n}]) << " GFLOP/s\n"
                      << k << ".of_sgemm " << median(of) << " x (median of the rounds' ratios)\n";
        }
        for (int n : threads)
            if (runs.count({c->name + "/layer", n}))
                std::cout << key << ".t" << n << ".cell_over_layer " << ratio({c->name, n}, {c->name + "/layer", n})
                          << " x (median of the rounds; the layer " << median_tok({c->name + "/layer", n})
                          << " tok/s)\n";
        if (runs.count({c->name, 1}) && runs.count({c->name, 2}))
            std::cout << key << ".t2_over_t1 " << ratio({c->name, 2}, {c->name, 1}) << " x\n";
        if (c->adaptive && runs.count({"word_b20", threads[0]}))
            std::cout << key << ".t" << threads[0] << ".over_full_softmax "
                      << ratio({c->name, threads[0]}, {"word_b20", threads[0]}) << " x (median of the rounds)\n";
        std::cout << std::flush;
        if (!torch || c->torch_name.empty()) continue;
        sg::set_num_threads(1);
        const double theirs = torch_tokens_per_s(*c, seconds, 1);
        if (theirs <= 0) {
            std::cout << "lstm_lm." << c->name << ": PyTorch figure skipped (torch missing or the script failed)\n";
            continue;
        }
        std::cout << key << ".torch_tokens_per_s " << theirs << " tok/s\n";
        if (runs.count({c->name, 1}))
            std::cout << key << ".ratio " << median_tok({c->name, 1}) / theirs << " x" << std::endl;
        if (!runs.count({c->name, 2})) continue;
        const double blas2 = torch_tokens_per_s(*c, seconds, 2);
        if (blas2 <= 0) {
            std::cout << "lstm_lm." << c->name << ": PyTorch two-core figure skipped (the script failed)\n";
            continue;
        }
        double ours = median_tok({c->name, 2});
        if (runs.count({c->name, 1})) ours = std::max(ours, median_tok({c->name, 1}));
        std::cout << key << ".torch_blas2_tokens_per_s " << blas2 << " tok/s\n"
                  << key << ".best_over_torch_best " << ours / std::max(theirs, blas2) << " x" << std::endl;
    }
    if (most > 1) std::cout << cross_core_read("_after") << std::endl;  // the host's state can change within a run
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("lstm_lm", argc, argv, parse_args, run); }
