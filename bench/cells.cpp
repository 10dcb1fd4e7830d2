// Any cell at fused speed: language-model training throughput of recurrent cells, one thread.
//
// Model: embedding(65, 128) -> recurrent cell (H 128) over T = 64 steps -> linear(H, 65) over all
// steps -> cross-entropy summed over T x B; plain SGD (lr 0.1). One training step is forward +
// backward + update on one tape reused with clear(). Models:
//   fused        nn::detail::lstm_layer over gathered rows as the issue measured it (the hand-fused
//                reference): on a tape with the graph optimisations off, so its input projection
//                is one GEMM over the T*B gathered rows
//   fused_embedded  nn::detail::lstm_layer::embedded (projects the embedding table when it has fewer rows than the
//                   lookup); the engine does the same for the layer over gathered rows and for the
//                   input-side products of any cell, so this is also what `fused` runs at with them on
//   lstm_cell    nn::lstm_cell through nn::unroll over the sequence (the library runs it as one
//                fused layer)
//   lstm_cell_steps  the same cell unrolled over the list of steps: step by step, five nodes each
//   gru_cell     nn::gru_cell through nn::unroll
//   user_lstm    an LSTM written from matmul, split, sigmoid, tanh, *, + (W [in, 4H])
//   mgu          the README's minimal gated unit
//   peephole     a peephole LSTM (diagonal peepholes on c) from primitive ops
//   ln_lstm      a layer-normalised LSTM (Ba et al. 2016), layer norm composed from mean/sqrt/div
// Every cell is written with no gradient code and no special protocol: whatever speed it gets,
// the engine gives it.
//
//     cells [--batch 1|32] [--seconds 2] [--rounds 3] [--models fused,a,b,...] [--no-opt]
//
// Each model runs `rounds` times, in turn with the others; the median is reported.
// Prints `bench cells.b<B>.<model>.tokens_per_s <v> tok/s` and `bench cells.b<B>.<model>.ratio`
// (to `fused` in the same run, when it is among the models). --no-opt turns the engine's graph optimisations off
// (sg::set_graph_optimizations(false)), to show what they give.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/seqgrad.hpp>

#include "bench/median.hpp"
#include "examples/cli.hpp"

using seqgrad::bench::median;

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
namespace cli = seqgrad::cli;

namespace {

constexpr std::size_t V = 65, E = 128, H = 128, T = 64;

xt::xarray<double> uniform(const sg::shape& s, double a, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(-a, a);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) x = u(rng);
    return v;
}

// ---- user cells: primitive ops only ------------------------------------------------------------

struct user_lstm {
    sg::parameter w, u, b;  // [in, 4H], [H, 4H], [4H]
    user_lstm(sg::parameter_scope s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w(s.add("w", uniform({in, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          u(s.add("u", uniform({hid, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          b(s.add("b", uniform({4 * hid}, 1 / std::sqrt(double(hid)), rng))) {}
    nn::lstm_state operator()(const sg::expr& x, const nn::lstm_state& s) const {
        sg::tape& t = x.owner();
        auto q = sg::split(sg::matmul(x, t.param(w)) + sg::matmul(s.h, t.param(u)) + t.param(b), 4);
        auto i = sg::sigmoid(q[0]), f = sg::sigmoid(q[1]), g = sg::tanh(q[2]), o = sg::sigmoid(q[3]);
        auto c = f * s.c + i * g;
        return {o * sg::tanh(c), c};
    }
};

struct mgu {
    sg::parameter w_f, u_f, b_f, w_h, u_h, b_h;
    mgu(sg::parameter_scope s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w_f(s.add("w_f", uniform({in, hid}, 1 / std::sqrt(double(hid)), rng))),
          u_f(s.add("u_f", uniform({hid, hid}, 1 / std::sqrt(double(hid)), rng))),
          b_f(s.add("b_f", uniform({hid}, 1 / std::sqrt(double(hid)), rng))),
          w_h(s.add("w_h", uniform({in, hid}, 1 / std::sqrt(double(hid)), rng))),
          u_h(s.add("u_h", uniform({hid, hid}, 1 / std::sqrt(double(hid)), rng))),
          b_h(s.add("b_h", uniform({hid}, 1 / std::sqrt(double(hid)), rng))) {}
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const {
        sg::tape& t = x.owner();
        auto f = sg::sigmoid(sg::matmul(x, t.param(w_f)) + sg::matmul(h, t.param(u_f)) + t.param(b_f));
        auto c = sg::tanh(sg::matmul(x, t.param(w_h)) + sg::matmul(f * h, t.param(u_h)) + t.param(b_h));
        return (1.0 - f) * h + f * c;
    }
};

struct peephole_lstm {
    sg::parameter w, u, b, p_i, p_f, p_o;
    peephole_lstm(sg::parameter_scope s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w(s.add("w", uniform({in, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          u(s.add("u", uniform({hid, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          b(s.add("b", uniform({4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          p_i(s.add("p_i", uniform({hid}, 0.1, rng))),
          p_f(s.add("p_f", uniform({hid}, 0.1, rng))),
          p_o(s.add("p_o", uniform({hid}, 0.1, rng))) {}
    nn::lstm_state operator()(const sg::expr& x, const nn::lstm_state& s) const {
        sg::tape& t = x.owner();
        auto q = sg::split(sg::matmul(x, t.param(w)) + sg::matmul(s.h, t.param(u)) + t.param(b), 4);
        auto i = sg::sigmoid(q[0] + t.param(p_i) * s.c), f = sg::sigmoid(q[1] + t.param(p_f) * s.c);
        auto c = f * s.c + i * sg::tanh(q[2]);
        auto o = sg::sigmoid(q[3] + t.param(p_o) * c);
        return {o * sg::tanh(c), c};
    }
};

// Layer norm over the last axis, composed: (x - mean) / sqrt(var + eps) * gain + bias.
sg::expr composed_layer_norm(const sg::expr& x, const sg::expr& gain, const sg::expr& bias) {
    auto d = x - sg::mean(x, -1, true);
    auto var = sg::mean(sg::square(d), -1, true);
    return d / sg::sqrt(var + 1e-5) * gain + bias;
}

struct ln_lstm {
    sg::parameter w, u, b, g_x, b_x, g_h, b_h, g_c, b_c;
    ln_lstm(sg::parameter_scope s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w(s.add("w", uniform({in, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          u(s.add("u", uniform({hid, 4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          b(s.add("b", uniform({4 * hid}, 1 / std::sqrt(double(hid)), rng))),
          g_x(s.add("g_x", xt::xarray<double>(xt::ones<double>({4 * hid})))),
          b_x(s.add("b_x", sg::shape{4 * hid})),
          g_h(s.add("g_h", xt::xarray<double>(xt::ones<double>({4 * hid})))),
          b_h(s.add("b_h", sg::shape{4 * hid})),
          g_c(s.add("g_c", xt::xarray<double>(xt::ones<double>({hid})))),
          b_c(s.add("b_c", sg::shape{hid})) {}
    nn::lstm_state operator()(const sg::expr& x, const nn::lstm_state& s) const {
        sg::tape& t = x.owner();
        auto a = composed_layer_norm(sg::matmul(x, t.param(w)), t.param(g_x), t.param(b_x)) +
                 composed_layer_norm(sg::matmul(s.h, t.param(u)), t.param(g_h), t.param(b_h)) + t.param(b);
        auto q = sg::split(a, 4);
        auto i = sg::sigmoid(q[0]), f = sg::sigmoid(q[1]), g = sg::tanh(q[2]), o = sg::sigmoid(q[3]);
        auto c = f * s.c + i * g;
        return {o * sg::tanh(composed_layer_norm(c, t.param(g_c), t.param(b_c))), c};
    }
};

sg::expr zeros(sg::tape& t, std::size_t b) { return t.constant(0.0, {b, H}); }
nn::lstm_state zero_lstm(sg::tape& t, std::size_t b) { return {zeros(t, b), zeros(t, b)}; }

// ---- the language model around a cell ----------------------------------------------------------

struct lm {
    std::size_t B;
    sg::parameter_store ps{sg::dtype::f32};
    sg::parameter emb, w_out, b_out;
    // Builds the recurrent part: embedded inputs [T*B, E] -> all hidden states [T*B, H].
    std::function<sg::expr(sg::tape&, const sg::expr&)> body;
    // Or from the ids themselves (fused_embedded: the layer projects the embedding table itself).
    std::function<sg::expr(sg::tape&, const std::vector<int>&)> body_ids;
    bool engine = true;  // false: the graph optimisations off on its tape (the reference)

    lm(std::size_t batch, std::mt19937_64& rng)
        : B(batch),
          emb(ps.add("emb", uniform({V, E}, 1.0, rng))),
          w_out(ps.add("out.weight", uniform({V, H}, 1.0 / std::sqrt(double(H)), rng))),
          b_out(ps.add("out.bias", uniform({V}, 1.0 / std::sqrt(double(H)), rng))) {}

    double train_step(sg::tape& t, const std::vector<int>& ids, const std::vector<int>& targets) {
        t.clear();
        const sg::expr hs = body_ids ? body_ids(t, ids) : body(t, sg::gather_rows(t.param(emb), ids));
        const sg::expr logits = sg::matmul_add(b_out, hs, sg::T(w_out));
        const sg::expr loss = sg::cross_entropy(logits, targets, sg::reduction::sum);
        t.backward(loss);
        for (const sg::parameter& p : ps.parameters()) {
            float* v = p.value<float>().data();
            float* g = p.grad<float>().data();
            for (std::size_t i = 0, n = p.size(); i < n; ++i) {
                v[i] -= 0.01f * g[i];
                g[i] = 0;
            }
        }
        return t.item(loss);
    }
};

// A cell run through nn::unroll over the T steps of x [T*B, E]; hidden states stacked [T*B, H].
// by_step: over the steps as a list (nn::lstm_cell then runs step by step, not as one layer).
template <class Cell, class State>
sg::expr through_unroll(sg::tape& t, const Cell& cell, const sg::expr& x, std::size_t B, State s0,
                        bool by_step = false) {
    const sg::expr seq = sg::reshape(x, {T, B, E});
    const auto states = by_step ? nn::unroll(t, cell, std::span<const sg::expr>(nn::unstack_steps(seq)), s0)
                                : nn::unroll(t, cell, seq, s0);
    std::vector<sg::expr> hs;
    for (const auto& s : states) hs.push_back(nn::hidden(s));
    return sg::reshape(nn::stack_steps(hs), {T * B, H});
}

std::unique_ptr<lm> make(const std::string& name, std::size_t B) {
    std::mt19937_64 rng(7);
    auto m = std::make_unique<lm>(B, rng);
    sg::parameter_scope s(m->ps, name);
    if (name == "fused") {
        nn::detail::lstm_layer layer{nn::lstm_cell(s, E, H, rng)};
        m->body = [layer, B](sg::tape&, const sg::expr& x) { return layer(x, B).hidden_all(); };
        m->engine = false;
    } else if (name == "fused_embedded") {
        nn::detail::lstm_layer layer{nn::lstm_cell(s, E, H, rng)};
        const sg::parameter emb = m->emb;
        m->body_ids = [layer, emb, B](sg::tape& t, const std::vector<int>& ids) {
            return layer.embedded(t.param(emb), ids, B).hidden_all();
        };
    } else if (name == "lstm_cell") {
        nn::lstm_cell cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zero_lstm(t, B)); };
    } else if (name == "lstm_cell_steps") {
        nn::lstm_cell cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) {
            return through_unroll(t, cell, x, B, zero_lstm(t, B), true);
        };
    } else if (name == "gru_cell") {
        nn::gru_cell cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zeros(t, B)); };
    } else if (name == "user_lstm") {
        user_lstm cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zero_lstm(t, B)); };
    } else if (name == "mgu") {
        mgu cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zeros(t, B)); };
    } else if (name == "peephole") {
        peephole_lstm cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zero_lstm(t, B)); };
    } else if (name == "ln_lstm") {
        ln_lstm cell(s, E, H, rng);
        m->body = [cell, B](sg::tape& t, const sg::expr& x) { return through_unroll(t, cell, x, B, zero_lstm(t, B)); };
    } else {
        return nullptr;
    }
    return m;
}

double tokens_per_s(lm& model, double seconds) {
    std::mt19937_64 rng(1);
    const std::size_t n = T * model.B;
    std::uniform_int_distribution<int> tok(0, static_cast<int>(V) - 1);
    std::vector<std::vector<int>> ids, targets;
    for (int k = 0; k < 8; ++k) {
        std::vector<int> b(n + model.B);
        for (int& v : b) v = tok(rng);
        ids.emplace_back(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        targets.emplace_back(b.begin() + static_cast<std::ptrdiff_t>(model.B), b.end());
    }
    sg::tape t(sg::dtype::f32);
    if (!model.engine) t.set_optimize(false);
    double loss = 0;
    for (std::size_t k = 0; k < 3; ++k) loss = model.train_step(t, ids[k % 8], targets[k % 8]);
    using clock = std::chrono::steady_clock;
    std::size_t steps = 0;
    const auto start = clock::now();
    double elapsed = 0;
    while (elapsed < seconds) {
        loss = model.train_step(t, ids[steps % 8], targets[steps % 8]);
        ++steps;
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
    }
    if (!std::isfinite(loss)) std::cerr << "cells: loss is not finite\n";
    return double(steps * n) / elapsed;
}

const char* const usage =
    "usage: cells [--batch B] [--seconds s] [--rounds r] [--models a,b,...] [--no-opt]\n"
    "  models: fused, fused_embedded, lstm_cell, lstm_cell_steps, gru_cell, user_lstm, mgu, peephole, ln_lstm (all)\n";

struct options {
    std::vector<std::size_t> batches{1, 32};
    double seconds = 2;
    std::vector<std::string> models{"fused", "fused_embedded", "lstm_cell", "lstm_cell_steps", "gru_cell", "user_lstm",
                                    "mgu",   "peephole",       "ln_lstm"};
    bool opt = true;
    int rounds = 3;
};

options parse_args(int argc, char** argv) {
    options o;
    const std::vector<std::string> all = o.models;
    cli::parse_options(argc, argv,
                       {{"--batch",
                         [&](const std::string& n, const std::string& v) {
                             o.batches = {cli::parse_number(n, v, std::size_t{1})};
                         }},
                        {"--seconds", cli::number(o.seconds, 0.0, true)},
                        {"--rounds", cli::number(o.rounds, 1)},
                        {"--models", cli::list_of(o.models, all)}},
                       usage, {{"--no-opt", [&] { o.opt = false; }}});
    return o;
}

int run(const options& o) {
    const std::vector<std::string>& models = o.models;
    const double seconds = o.seconds;
    const int rounds = o.rounds;
    sg::set_blas_threads(1);
    sg::set_num_threads(1);
    sg::set_graph_optimizations(o.opt);
    std::cout << "bench blas.core " << sg::blas_core_name() << "\n";
    for (std::size_t B : o.batches) {
        std::vector<std::unique_ptr<lm>> built;
        for (const auto& name : models) {
            built.push_back(make(name, B));
            if (!built.back()) {
                std::cerr << "cells: unknown model '" << name << "'\n";
                return 2;
            }
        }
        // Rounds over all models in turn, medians per model: load that comes and goes on a shared
        // machine hits every model alike.
        std::vector<std::vector<double>> runs(models.size());
        for (int r = 0; r < rounds; ++r)
            for (std::size_t k = 0; k < models.size(); ++k) runs[k].push_back(tokens_per_s(*built[k], seconds));
        // The ratio's reference first, wherever `fused` stands in the list.
        double ref = 0;
        for (std::size_t k = 0; k < models.size(); ++k)
            if (models[k] == "fused") ref = median(runs[k]);
        for (std::size_t k = 0; k < models.size(); ++k) {
            const double v = median(runs[k]);
            const std::string key = "bench cells.b" + std::to_string(B) + "." + models[k];
            std::cout << key << ".tokens_per_s " << v << " tok/s\n";
            if (ref > 0) std::cout << key << ".ratio " << v / ref << " x" << std::endl;
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::main("cells", argc, argv, parse_args, run); }
