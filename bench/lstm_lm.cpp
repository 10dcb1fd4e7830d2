// LSTM language-model training throughput, seqgrad against PyTorch in the same run.
//
// Model: embedding(V, E) -> 1-layer LSTM(E, H) -> linear(H, V) -> cross-entropy summed over T x B;
// plain SGD (lr 0.1) after global-norm clipping (5); random tokens; zero initial state per batch.
// One training step is forward + backward + clipping + update, on one tape reused with clear().
// The seqgrad model is the fused path: one GEMM for the input projections of all steps
// (nn::lstm_layer::embedded, which projects the embedding table instead of the looked-up rows when
// the table has fewer rows: V = 65 < T*B = 2048 for char_b32), one lstm_step node per step, one
// GEMM for the output layer over all steps. --plain always gathers the rows first and projects
// them (T*B rows), as PyTorch's model does.
//
//     lstm_lm [--config char_b1|char_b32|word_b20] [--seconds 4] [--no-torch] [--plain]
//
// Prints `bench lstm_lm.<config>.tokens_per_s <v> tok/s`, the PyTorch figure of
// bench/torch_lstm_lm.py (nn.LSTM, run as a subprocess right after) as `...torch_tokens_per_s`,
// and their ratio.
//
// Threads: both sides run on one thread. seqgrad calls set_blas_threads(1) and the script
// torch.set_num_threads(1) (its OpenBLAS/MKL pool pinned to 1 too), so the ratio compares the
// libraries, not thread pools; on the 2-core machines we measure on, extra BLAS threads next to
// another process's are slower, not faster (PEERS.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

namespace {

struct config {
    std::string name;
    std::size_t V, E, H, T, B;
};
const config configs[] = {
    {"char_b1", 65, 128, 128, 64, 1},
    {"char_b32", 65, 128, 128, 64, 32},
    {"word_b20", 10000, 256, 256, 35, 20},
};

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
    nn::lstm_layer layer;

    lm(const config& c, std::mt19937_64& rng)
        : cfg(c),
          emb(ps.add("emb", uniform({c.V, c.E}, 1.0, rng))),
          w_out(ps.add("out.weight", uniform({c.V, c.H}, 1.0 / std::sqrt(double(c.H)), rng))),
          b_out(ps.add("out.bias", uniform({c.V}, 1.0 / std::sqrt(double(c.H)), rng))),
          cell(sg::parameter_scope(ps, "lstm"), c.E, c.H, rng),
          layer(cell) {}

    // ids and targets: T*B each, time-major (row t*B + b).
    double train_step(sg::tape& t, const std::vector<int>& ids, const std::vector<int>& targets, bool plain) {
        t.clear();
        const nn::lstm_sequence seq = plain ? layer(sg::gather_rows(t.param(emb), ids), cfg.B)
                                            : layer.embedded(t.param(emb), ids, cfg.B);
        const sg::expr logits = sg::matmul_add(b_out, seq.hidden_all(), sg::T(w_out));
        const sg::expr loss = sg::cross_entropy(logits, targets, sg::reduction::sum);
        t.backward(loss);
        clip_and_update(0.1f, 5.0);
        return t.item(loss);
    }

    // torch.nn.utils.clip_grad_norm_(max_norm) then SGD: scale = max_norm / (norm + 1e-6) when
    // below 1; gradients are zeroed in the same pass.
    void clip_and_update(float lr, double max_norm) {
        double sq = 0;
        for (const sg::parameter& p : ps.parameters()) {
            const auto& g = p.grad<float>();
            double acc[8] = {};
            std::size_t n = g.size(), i = 0;
            for (; i + 8 <= n; i += 8)
                for (int k = 0; k < 8; ++k) acc[k] += double(g.data()[i + k]) * g.data()[i + k];
            for (; i < n; ++i) acc[0] += double(g.data()[i]) * g.data()[i];
            for (double a : acc) sq += a;
        }
        const double norm = std::sqrt(sq), coef = max_norm / (norm + 1e-6);
        const float step = lr * static_cast<float>(std::min(coef, 1.0));
        for (const sg::parameter& p : ps.parameters()) {
            float* v = p.value<float>().data();
            float* g = p.grad<float>().data();
            for (std::size_t i = 0, n = p.size(); i < n; ++i) {
                v[i] -= step * g[i];
                g[i] = 0;
            }
            p.mark_modified();
        }
    }
};

double seqgrad_tokens_per_s(const config& c, double seconds, bool plain) {
    std::mt19937_64 rng(1);
    lm model(c, rng);
    const std::size_t n = c.T * c.B;
    std::uniform_int_distribution<int> tok(0, static_cast<int>(c.V) - 1);
    // Eight batches of T + 1 rows of tokens: ids are rows 0..T-1, targets rows 1..T.
    std::vector<std::vector<int>> ids, targets;
    for (int k = 0; k < 8; ++k) {
        std::vector<int> b(n + c.B);
        for (int& v : b) v = tok(rng);
        ids.emplace_back(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        targets.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(c.B), b.end());
    }
    sg::tape t(sg::dtype::f32);
    auto step = [&](std::size_t k) { return model.train_step(t, ids[k % 8], targets[k % 8], plain); };
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
    return double(steps * n) / elapsed;
}

// Runs the PyTorch script and returns its figure, or a negative number when it did not run.
double torch_tokens_per_s(const config& c, double seconds) {
    const std::string cmd = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 /usr/bin/python3 " +
                            std::string(SEQGRAD_SOURCE_DIR) + "/bench/torch_lstm_lm.py --config " + c.name +
                            " --seconds " + std::to_string(seconds) + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return -1;
    double v = -1;
    char line[512];
    const std::string key = "bench lstm_lm." + c.name + ".torch_tokens_per_s ";
    while (std::fgets(line, sizeof line, p)) {
        std::string s(line);
        if (s.rfind(key, 0) == 0) v = std::atof(s.c_str() + key.size());
        else std::cout << "torch: " << s;  // skip messages and errors
    }
    const int rc = pclose(p);
    return rc == 0 ? v : -1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string only;
    double seconds = 4;
    bool torch = true, plain = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--config" && i + 1 < argc) only = argv[++i];
        else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--no-torch") torch = false;
        else if (a == "--plain") plain = true;
        else {
            std::cerr << "usage: lstm_lm [--config char_b1|char_b32|word_b20] [--seconds s] [--no-torch] [--plain]\n";
            return 2;
        }
    }
    sg::set_blas_threads(1);
    std::cout << "bench blas.core " << sg::blas_core_name() << "\n";
    bool found = false;
    for (const config& c : configs) {
        if (!only.empty() && c.name != only) continue;
        found = true;
        const double ours = seqgrad_tokens_per_s(c, seconds, plain);
        std::cout << "bench lstm_lm." << c.name << ".tokens_per_s " << ours << " tok/s" << std::endl;
        if (!torch) continue;
        const double theirs = torch_tokens_per_s(c, seconds);
        if (theirs <= 0) {
            std::cout << "lstm_lm." << c.name << ": PyTorch figure skipped (torch missing or the script failed)\n";
            continue;
        }
        std::cout << "bench lstm_lm." << c.name << ".torch_tokens_per_s " << theirs << " tok/s\n";
        std::cout << "bench lstm_lm." << c.name << ".ratio " << ours / theirs << " x" << std::endl;
    }
    if (!found) {
        std::cerr << "lstm_lm: unknown config '" << only << "' (char_b1, char_b32, word_b20)\n";
        return 2;
    }
}
