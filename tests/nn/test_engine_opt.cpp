// The engine's graph optimisations (batched input-side products, batched weight gradients) held
// equal to the plain graph: the same model run on a tape with the optimisations on and off gives
// the same loss and the same gradient for every parameter and input, in double to 1e-12 and in
// float to 1e-5, for every built-in cell, user-written cells, masked, stacked (with residuals),
// bidirectional and encoder-decoder nets, under truncation and state clipping; and gradcheck
// passes with them on.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <xtensor-blas/xlinalg.hpp>

#include <seqgrad/core/blas.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

constexpr std::size_t B = 3, I = 8, H = 4, T = 6, C = 3;  // I >= 8: narrower inputs are not batched

// A user-written LSTM in the [in, out] layout: products matmul(x, W), no transpose flags.
struct user_lstm {
    sg::parameter w, u, b;
    user_lstm(const sg::parameter_scope& s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w(s.add("w", random_array({in, 4 * hid}, rng, 0.5))),
          u(s.add("u", random_array({hid, 4 * hid}, rng, 0.5))),
          b(s.add("b", random_array({4 * hid}, rng, 0.5))) {}
    nn::lstm_state operator()(const sg::expr& x, const nn::lstm_state& s) const {
        sg::tape& t = x.owner();
        auto q = sg::split(sg::matmul(x, t.param(w)) + sg::matmul(s.h, t.param(u)) + t.param(b), 4);
        auto c = sg::sigmoid(q[1]) * s.c + sg::sigmoid(q[0]) * sg::tanh(q[2]);
        return {sg::sigmoid(q[3]) * sg::tanh(c), c};
    }
    nn::lstm_state initial_state(sg::tape& t, std::size_t batch) const {
        return {t.constant(0.0, {batch, H}), t.constant(0.0, {batch, H})};
    }
};

// Minimal gated unit: one product reads f * h, which depends on the same step's state.
struct mgu {
    sg::parameter w_f, u_f, b_f, w_h, u_h, b_h;
    mgu(const sg::parameter_scope& s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w_f(s.add("w_f", random_array({in, hid}, rng, 0.5))),
          u_f(s.add("u_f", random_array({hid, hid}, rng, 0.5))),
          b_f(s.add("b_f", random_array({hid}, rng, 0.5))),
          w_h(s.add("w_h", random_array({in, hid}, rng, 0.5))),
          u_h(s.add("u_h", random_array({hid, hid}, rng, 0.5))),
          b_h(s.add("b_h", random_array({hid}, rng, 0.5))) {}
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const {
        sg::tape& t = x.owner();
        auto f = sg::sigmoid(sg::matmul(x, t.param(w_f)) + sg::matmul(h, t.param(u_f)) + t.param(b_f));
        auto c = sg::tanh(sg::matmul(x, t.param(w_h)) + sg::matmul(f * h, t.param(u_h)) + t.param(b_h));
        return (1.0 - f) * h + f * c;
    }
    sg::expr initial_state(sg::tape& t, std::size_t batch) const { return t.constant(0.0, {batch, H}); }
};

// An LSTM on the fused pointwise node whose state is views into each step's record: the next
// step's product reads a view of a step's own node, which is no sequence to batch over.
struct record_lstm : user_lstm {
    using user_lstm::user_lstm;
    nn::lstm_state operator()(const sg::expr& x, const nn::lstm_state& s) const {
        sg::tape& t = x.owner();
        const sg::expr rec = sg::lstm_pointwise(sg::matmul(x, t.param(w)) + t.param(b), sg::matmul(s.h, t.param(u)),
                                                s.c);
        const sg::shape bh{x.shape()[0], H};
        return {sg::reshape(sg::slice(rec, 0, 0, 1), bh), sg::reshape(sg::slice(rec, 0, 1, 2), bh)};
    }
    nn::lstm_state initial_state(sg::tape& t, std::size_t batch) const {
        return {t.constant(0.0, {batch, H}), t.constant(0.0, {batch, H})};
    }
};

// A model: parameters in ps (and inputs in data, a store of their own so their gradients are
// compared too), and a loss built on a tape.
struct model {
    sg::parameter_store ps, data;
    std::function<sg::expr(sg::tape&)> loss;
    model(sg::dtype dt) : ps(dt), data(dt) {}
};

// The steps of one [T, B, I] sequence (views of it, as nn::unroll over a sequence gives): the
// input-side products of all steps become one GEMM, forward and backward.
std::vector<sg::expr> inputs(sg::tape& t, const sg::parameter& seq) { return nn::unstack_steps(t.param(seq)); }

// Cross-entropy of a shared output layer over every step's hidden state (one matmul_add each).
template <class State>
sg::expr readout(const sg::parameter& w, const sg::parameter& b, const std::vector<State>& states) {
    std::vector<int> targets(B);
    sg::expr total;
    for (std::size_t k = 0; k < states.size(); ++k) {
        for (std::size_t r = 0; r < B; ++r) targets[r] = static_cast<int>((k + r) % C);
        sg::expr l = sg::cross_entropy(sg::matmul_add(b, nn::hidden(states[k]), sg::T(w)), targets);
        total = k ? total + l : l;
    }
    return total;
}

std::unique_ptr<model> make(const std::string& name, sg::dtype dt) {
    auto m = std::make_unique<model>(dt);
    std::mt19937_64 rng(11);
    const sg::parameter xs = m->data.add("xs", random_array({T, B, I}, rng));
    sg::parameter_scope s(m->ps, name);
    const std::size_t out_in = name == "bidirectional" ? 2 * H : H;
    sg::parameter w_out = s.add("w_out", random_array({C, out_in}, rng, 0.5));
    sg::parameter b_out = s.add("b_out", random_array({C}, rng, 0.5));
    auto over = [&](auto cell, std::vector<std::size_t> lengths = {}) {
        m->loss = [=](sg::tape& t) {
            auto x = inputs(t, xs);
            auto s0 = cell.initial_state(t, B);
            auto states = lengths.empty() ? nn::unroll(t, cell, x, s0) : nn::unroll_masked(t, cell, x, s0, lengths);
            return readout(w_out, b_out, states);
        };
    };
    if (name == "lstm_cell") over(nn::lstm_cell(s.sub("cell"), I, H, rng));
    else if (name == "gru_cell") over(nn::gru_cell(s.sub("cell"), I, H, rng));
    else if (name == "rnn_relu") over(nn::rnn_cell(s.sub("cell"), I, H, nn::rnn_activation::relu, rng));
    else if (name == "user_lstm") over(user_lstm(s.sub("cell"), I, H, rng));
    else if (name == "mgu") over(mgu(s.sub("cell"), I, H, rng));
    else if (name == "record_lstm") over(record_lstm(s.sub("cell"), I, H, rng));
    else if (name == "masked") over(nn::lstm_cell(s.sub("cell"), I, H, rng), {6, 2, 4});
    else if (name == "stacked") over(nn::make_stacked<nn::gru_cell>(s.sub("deep"), 3, I, H, true, rng));
    else if (name == "embedded" || name == "embedded_tied") {
        // Steps read rows of an embedding lookup into a table with fewer rows than the lookup
        // (4 rows, 18 looked up): the engine multiplies the table instead of the rows, and sums the
        // products' gradients by id. Tied: the table is also the output layer's weight.
        const bool tied = name == "embedded_tied";
        const std::size_t in = tied ? H : I, rows = tied ? C : 4;
        sg::parameter emb = s.add("emb", random_array({rows, in}, rng, 0.5));
        std::vector<int> ids(T * B);
        for (std::size_t r = 0; r < ids.size(); ++r) ids[r] = static_cast<int>((r * 7 + r / 5) % rows);
        auto cell = nn::lstm_cell(s.sub("cell"), in, H, rng);
        m->loss = [=](sg::tape& t) {
            auto x = nn::unstack_steps(sg::reshape(sg::gather_rows(t.param(emb), ids), {T, B, in}));
            auto states = nn::unroll(t, cell, x, cell.initial_state(t, B));
            return readout(tied ? emb : w_out, b_out, states);
        };
    } else if (name == "embedded_step_bias") {
        // The same lookup, read by a cell whose input-side product adds a bias node of its own at
        // every step: the engine sums each product's bias gradient on its own.
        sg::parameter emb = s.add("emb", random_array({4, I}, rng, 0.5));
        std::vector<int> ids(T * B);
        for (std::size_t r = 0; r < ids.size(); ++r) ids[r] = static_cast<int>((r * 3 + r / 5) % 4);
        const sg::parameter w = s.add("w", random_array({I, H}, rng, 0.5)),
                            u = s.add("u", random_array({H, H}, rng, 0.5)), b = s.add("b", random_array({H}, rng, 0.5));
        auto cell = [w, u, b](const sg::expr& x, const sg::expr& h) {
            sg::tape& t = x.owner();
            return sg::tanh(sg::matmul_add(t.param(b) * 0.5, x, t.param(w)) + sg::matmul(h, t.param(u)));
        };
        m->loss = [=](sg::tape& t) {
            auto x = nn::unstack_steps(sg::reshape(sg::gather_rows(t.param(emb), ids), {T, B, I}));
            return readout(w_out, b_out, nn::unroll(t, cell, x, t.constant(0.0, {B, H})));
        };
    } else if (name == "lstm_sequence") {
        // nn::lstm_cell over a whole [T, B, I] sequence: the fused layer with the optimisations on
        // (states are views of the step records), the per-step cell with them off.
        nn::lstm_cell cell(s.sub("cell"), I, H, rng);
        m->loss = [=](sg::tape& t) {
            return readout(w_out, b_out, nn::unroll(t, cell, t.param(xs), cell.initial_state(t, B)));
        };
    } else if (name == "gathered") {
        // A product of a whole lookup (nn::detail::lstm_layer's input projection over gathered rows, no
        // per-step views): the engine multiplies the table at once, as lstm_layer::embedded does.
        sg::parameter emb = s.add("emb", random_array({4, I}, rng, 0.5));
        std::vector<int> ids(T * B);
        for (std::size_t r = 0; r < ids.size(); ++r) ids[r] = static_cast<int>((r * 5 + r / 4) % 4);
        const nn::detail::lstm_layer layer(nn::lstm_cell(s.sub("cell"), I, H, rng));
        m->loss = [=](sg::tape& t) { return readout(w_out, b_out, layer(sg::gather_rows(t.param(emb), ids), B).hs()); };
    } else if (name == "bidirectional") {
        nn::bidirectional<nn::lstm_cell, user_lstm> bi{nn::lstm_cell(s.sub("fwd"), I, H, rng),
                                                       user_lstm(s.sub("bwd"), I, H, rng)};
        m->loss = [=](sg::tape& t) {
            auto x = inputs(t, xs);
            const std::size_t lengths[] = {6, 3, 5};
            auto r = bi(t, x, lengths);
            return readout(w_out, b_out, r.outputs);
        };
    } else if (name == "encode_decode") {
        nn::lstm_cell enc(s.sub("enc"), I, H, rng), dec(s.sub("dec"), I, H, rng);
        m->loss = [=](sg::tape& t) {
            auto x = inputs(t, xs);
            std::span<const sg::expr> src(x.data(), 4), tgt(x.data() + 4, 2);
            auto r = nn::encode_decode(t, enc, dec, src, tgt, enc.initial_state(t, B));
            return readout(w_out, b_out, r.decoder);
        };
    }
    return m;
}

const char* const model_names[] = {"lstm_cell",     "gru_cell",      "rnn_relu", "user_lstm", "mgu",
                                   "record_lstm",   "masked",        "stacked",  "embedded",  "embedded_tied",
                                   "bidirectional", "encode_decode", "gathered"};

struct outcome {
    double loss;
    std::vector<xt::xarray<double>> grads;  // every parameter of ps, then of data
};

outcome run(model& m, bool optimize, const sg::backward_plan& plan = {}) {
    m.ps.zero_grad();
    m.data.zero_grad();
    sg::tape t(m.ps.scalar_type());
    t.set_optimize(optimize);
    sg::expr loss = m.loss(t);
    t.backward(loss, plan);
    outcome o{t.item(loss), {}};
    for (const auto* st : {&m.ps, &m.data})
        for (const auto& p : st->parameters()) o.grads.push_back(p.grad_as_double());
    return o;
}

void check_equal(const std::string& name, sg::dtype dt, double tol, const sg::backward_plan& plan = {}) {
    auto m = make(name, dt);
    const outcome off = run(*m, false, plan), on = run(*m, true, plan);
    BOOST_TEST_CONTEXT(name << (dt == sg::dtype::f64 ? " f64" : " f32")) {
        BOOST_TEST(std::abs(on.loss - off.loss) <= tol * (1 + std::abs(off.loss)));
        BOOST_REQUIRE_EQUAL(on.grads.size(), off.grads.size());
        for (std::size_t k = 0; k < on.grads.size(); ++k) {
            const double scale = 1 + xt::amax(xt::abs(off.grads[k]))();
            BOOST_TEST(xt::amax(xt::abs(on.grads[k] - off.grads[k]))() <= tol * scale, "gradient " << k);
        }
        // And the gradient is not trivially zero (the comparison would then prove nothing).
        double total = 0;
        for (const auto& g : off.grads) total += xt::sum(xt::abs(g))();
        BOOST_TEST(total > 0.1);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_opt)

BOOST_AUTO_TEST_CASE(optimised_equals_plain_in_double) {
    for (const char* name : model_names) check_equal(name, sg::dtype::f64, 1e-12);
}

BOOST_AUTO_TEST_CASE(optimised_equals_plain_in_float) {
    for (const char* name : model_names) check_equal(name, sg::dtype::f32, 1e-5);
}

BOOST_AUTO_TEST_CASE(optimised_equals_plain_under_transforms) {
    check_equal("lstm_cell", sg::dtype::f64, 1e-12, sg::truncate_bptt(2));
    check_equal("user_lstm", sg::dtype::f64, 1e-12, sg::truncate_bptt(2, 4));
    check_equal("mgu", sg::dtype::f64, 1e-12, sg::clip_state_gradient(0.05));
    check_equal("embedded", sg::dtype::f64, 1e-12, sg::truncate_bptt(2));
    check_equal("embedded_tied", sg::dtype::f64, 1e-12, sg::clip_state_gradient(0.05));
    check_equal("gathered", sg::dtype::f64, 1e-12, sg::truncate_bptt(2));
    check_equal("lstm_sequence", sg::dtype::f64, 1e-12, sg::truncate_bptt(2, 4));
    check_equal("lstm_sequence", sg::dtype::f64, 1e-12, sg::clip_state_gradient(0.05));
    check_equal("stacked", sg::dtype::f64, 1e-12, sg::clip_global_norm(0.5) | sg::truncate_bptt(3));
}

// The comparisons above prove nothing if the fast paths never run: the tape's counts say they do.
BOOST_AUTO_TEST_CASE(optimisations_are_taken) {
    for (const bool on : {false, true})
        for (const char* name : {"user_lstm", "embedded"}) {
            auto m = make(name, sg::dtype::f64);
            sg::tape t(sg::dtype::f64);
            t.set_optimize(on);
            t.backward(m->loss(t));
            const auto& c = t.optimizations();
            BOOST_TEST_CONTEXT(name << (on ? " on" : " off")) {
                // The first product of each group runs alone; from the second, one GEMM serves all T.
                BOOST_TEST(c.products_batched == (on ? T - 1 : 0));
                BOOST_TEST(c.table_products == (on && std::string(name) == "embedded" ? T - 1 : 0));
                // Input-side and recurrent products of the T steps, and the T readouts (2 weights);
                // products served from a lookup table need none (their gradients are summed by id).
                const std::size_t homes = std::string(name) == "embedded" ? 2 * T : 3 * T;
                BOOST_TEST(c.gradient_homes == (on ? homes : 0));
                // nn::lstm_cell's weights have PyTorch's layout [4H, in]: its T recurrent products
                // (and the first input-side one, before batching starts) read one transposed copy
                // per weight; user_lstm's are [in, 4H] and need none.
                BOOST_TEST(c.products_transposed == (on && std::string(name) == "embedded" ? T + 1 : 0));
                // user_lstm's five activations a step, each read once by a product of gates; the
                // fused lstm_step has none.
                BOOST_TEST(c.activations_folded == (on && std::string(name) == "user_lstm" ? 5 * T : 0));
            }
        }
}

BOOST_AUTO_TEST_CASE(a_whole_lookup_is_projected_through_its_table) {
    for (const bool on : {false, true}) {
        auto m = make("gathered", sg::dtype::f64);
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        t.backward(m->loss(t));
        BOOST_TEST(t.optimizations().table_products == (on ? 1u : 0u), (on ? "on" : "off"));
    }
}

// A lookup whose per-step products send their gradients to the table's rows (table_products) gets
// none from them: tape::grad refuses it and the views between (it showed zeros or a partial
// gradient), while the table's and the weight's gradients equal the plain graph's.
BOOST_AUTO_TEST_CASE(a_lookup_bypassed_by_the_table_path_is_refused_by_grad) {
    constexpr std::size_t steps = 3, rows = 2, in = 8, out = 3;
    std::mt19937_64 rng(21);
    const xt::xarray<double> ev = random_array({2, in}, rng), wv = random_array({out, in}, rng);
    std::vector<xt::xarray<double>> rv;
    for (std::size_t k = 0; k < steps; ++k) rv.push_back(random_array({rows, out}, rng));
    const std::vector<int> ids = {0, 1, 1, 0, 1, 1};
    xt::xarray<double> grads[2][2];
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr e = t.input(ev, true), w = t.input(wv, true), g = sg::gather_rows(e, ids);
        const std::vector<sg::expr> xs = nn::unstack_steps(sg::reshape(g, {steps, rows, in}));
        sg::expr loss;
        for (std::size_t k = 0; k < steps; ++k) {
            sg::step_scope scope(t, static_cast<int>(k));
            const sg::expr term = sg::sum(sg::matmul(xs[k], w, false, true) * t.input(rv[k]));
            loss = loss.valid() ? loss + term : term;
        }
        t.backward(loss);
        grads[on][0] = t.grad(e);
        grads[on][1] = t.grad(w);
        if (!on) continue;
        BOOST_TEST_REQUIRE(t.optimizations().table_products > 0u);
        BOOST_TEST(t.has_grad(g));
        for (const sg::expr& v : {g, xs[1], xs[2]})
            BOOST_CHECK_EXCEPTION(t.grad(v), sg::graph_error, [](const sg::graph_error& x) {
                const std::string m = x.what();
                return m.find("tape::grad") != std::string::npos && m.find("set_optimize(false)") != std::string::npos;
            });
    }
    for (std::size_t q = 0; q < 2; ++q) BOOST_TEST(max_diff(grads[0][q], grads[1][q]) <= 1e-12, "gradient " << q);
}

// A lookup large enough that its table's summed gradient rows are split across threads by ranges
// of ids (from 2^20 gradient entries), with the table's and the weight's products side by side: the
// same bits on 1 and 2 threads, and the plain graph's gradients. The ids are skewed (a few rows
// take most of the lookups), so the ranges hold unequal numbers of ids.
BOOST_AUTO_TEST_CASE(a_large_lookup_gives_the_same_table_gradient_on_one_and_two_threads) {
    constexpr std::size_t V = 64, rows = 2048, in = 80, out = 512;
    std::mt19937_64 rng(23);
    const xt::xarray<double> ev = random_array({V, in}, rng), wv = random_array({out, in}, rng),
                             rv = random_array({rows, out}, rng);
    std::vector<int> ids(rows);
    for (std::size_t r = 0; r < rows; ++r) ids[r] = static_cast<int>((r * r / 7 + r / 5) % (r % 3 ? 9 : V));
    struct run_t {
        bool on;
        std::size_t threads;
        xt::xarray<double> de, dw;
    };
    std::vector<run_t> runs = {{false, 1, {}, {}}, {true, 1, {}, {}}, {true, 2, {}, {}}};
    const std::size_t before = sg::num_threads();
    for (run_t& r : runs) {
        sg::set_num_threads(r.threads);
        sg::tape t(sg::dtype::f64);
        t.set_optimize(r.on);
        const sg::expr e = t.input(ev, true), w = t.input(wv, true);
        const sg::expr y = sg::matmul(sg::gather_rows(e, ids), w, false, true);
        t.backward(sg::sum(y * t.input(rv)));
        BOOST_TEST(t.optimizations().table_products == (r.on ? 1u : 0u));
        r.de = t.grad(e);
        r.dw = t.grad(w);
    }
    sg::set_num_threads(before);
    BOOST_TEST(max_diff(runs[1].de, runs[2].de) == 0.0);
    BOOST_TEST(max_diff(runs[1].dw, runs[2].dw) == 0.0);
    // By hand, with SR the rows of R summed by id ([V, out]): dE = SR W and dW = SR^T E.
    xt::xarray<double> sr = xt::zeros<double>({V, out});
    for (std::size_t r = 0; r < rows; ++r)
        xt::view(sr, static_cast<std::size_t>(ids[r]), xt::all()) += xt::view(rv, r, xt::all());
    const xt::xarray<double> want_e = xt::linalg::dot(sr, wv), want_w = xt::linalg::dot(xt::transpose(sr), ev);
    for (const run_t& r : runs) {
        BOOST_TEST_CONTEXT("optimised " << r.on << ", " << r.threads << " threads") {
            BOOST_TEST(max_diff(r.de, want_e) <= 1e-10);
            BOOST_TEST(max_diff(r.dw, want_w) <= 1e-10);
        }
    }
}

// A view read as the rows of one product (y wo: its rows' gradient deferred, flag 2) and as the
// weight of another (a y^T: its gradient deferred as a weight's, flag 1): the second deferral
// overwrote the first's flag, so the rows came after y's gradient had gone on to x and were lost.
BOOST_AUTO_TEST_CASE(a_view_deferred_as_rows_and_as_a_weight) {
    std::mt19937_64 rng(22);
    const xt::xarray<double> xv = random_array({2, 4}, rng), av = random_array({2, 4}, rng),
                             wv = random_array({4, 4}, rng), r1 = random_array({2, 2}, rng),
                             r2 = random_array({2, 4}, rng);
    xt::xarray<double> grads[2];
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), a = t.input(av, true), wo = t.input(wv, true);
        const sg::expr y = sg::reshape(sg::reshape(x, {2, 1, 4}) * 1.5, {2, 4});
        t.backward(sg::sum(sg::matmul(a, y, false, true) * t.input(r1)) + sg::sum(sg::matmul(y, wo) * t.input(r2)));
        grads[on] = t.grad(x);
    }
    // By hand: dL/dx = 1.5 (r1^T a + r2 wo^T).
    const xt::xarray<double> want = 1.5 *
                                    (xt::linalg::dot(xt::transpose(r1), av) + xt::linalg::dot(r2, xt::transpose(wv)));
    for (const bool on : {false, true}) BOOST_TEST(max_diff(grads[on], want) <= 1e-14, "optimised " << on);
}

// Gradient-flow records see the same ||dL/dh_t|| whichever way the LSTM ran: through the fused
// layer the next step reads the whole record, so the record's h block holds the state's gradient.
BOOST_AUTO_TEST_CASE(gradient_flow_records_equal_with_the_fused_layer) {
    auto m = make("lstm_sequence", sg::dtype::f64);
    std::vector<double> norms[2];
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        sg::gradient_flow flow;
        t.backward(m->loss(t), sg::record_gradient_flow(flow));
        norms[on] = flow.norm;
    }
    BOOST_REQUIRE_EQUAL(norms[0].size(), T);
    BOOST_REQUIRE_EQUAL(norms[1].size(), T);
    for (std::size_t k = 0; k < T; ++k) {
        BOOST_TEST(norms[0][k] > 1e-3);
        BOOST_TEST(std::abs(norms[1][k] - norms[0][k]) <= 1e-12 * norms[0][k], "step " << k);
    }
}

// A reshape that is its input's only reader hands its gradient over instead of copying it; one
// whose input is also read elsewhere does not. Either way each node's gradient is its own.
BOOST_AUTO_TEST_CASE(reshape_gradients_handed_over_only_when_alone) {
    std::mt19937_64 rng(5);
    const xt::xarray<double> xv = random_array({2, 6}, rng), yv = random_array({2, 6}, rng);
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), y = t.input(yv, true);
        const sg::expr sy = sg::sum(y);  // read before the reshape: its backward runs after the reshape's
        const sg::expr r = sg::reshape(x, {3, 4}), ry = sg::reshape(y, {12});
        t.backward(sg::sum(r * r) + sg::sum(ry * ry * ry) + sy);
        BOOST_TEST_CONTEXT((on ? "on" : "off")) {
            BOOST_TEST(max_diff(t.grad(x), 2.0 * xv) <= 1e-15);
            BOOST_TEST(max_diff(t.grad(r), xt::reshape_view(2.0 * xv, {3, 4})) <= 1e-15);
            BOOST_TEST(max_diff(t.grad(y), 3.0 * yv * yv + 1.0) <= 1e-15);
            BOOST_TEST(max_diff(t.grad(ry), xt::reshape_view(3.0 * yv * yv, {12})) <= 1e-15);
            // Handed over: one buffer (with the optimisations on); y's is its own.
            BOOST_TEST((t.gradient_at(x.id()).data == t.gradient_at(r.id()).data) == on);
            BOOST_TEST(t.gradient_at(y.id()).data != t.gradient_at(ry.id()).data);
        }
    }
    // The same for the blocks of a concat along its first axis (steps stacked).
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), y = t.input(yv, true);
        const sg::expr sy = sg::sum(y);
        const sg::expr cc = sg::concat({x, y}, 0);
        t.backward(sg::sum(cc * cc) + sy);
        BOOST_TEST_CONTEXT((on ? "concat on" : "concat off")) {
            BOOST_TEST(max_diff(t.grad(x), 2.0 * xv) <= 1e-15);
            BOOST_TEST(max_diff(t.grad(y), 2.0 * yv + 1.0) <= 1e-15);
            BOOST_TEST(max_diff(t.grad(cc), 2.0 * xt::concatenate(xt::xtuple(xv, yv), 0)) <= 1e-15);
            BOOST_TEST((t.gradient_at(x.id()).data == t.gradient_at(cc.id()).data) == on);
            BOOST_TEST(t.gradient_at(y.id()).data != static_cast<double*>(t.gradient_at(cc.id()).data) + xv.size());
        }
    }
}

// Sums hand their gradient to an input over that gradient unchanged (same shape, not subtracted)
// and read by nothing else: x and y to s to u share one buffer; the broadcast bias b, the
// subtrahend c and f (read twice) get their own.
BOOST_AUTO_TEST_CASE(sum_gradients_handed_over_only_when_unchanged_and_alone) {
    std::mt19937_64 rng(6);
    const xt::xarray<double> xv = random_array({2, 6}, rng), yv = random_array({2, 6}, rng),
                             bv = random_array({6}, rng), av = random_array({2, 6}, rng),
                             cv = random_array({2, 6}, rng), ev = random_array({2, 6}, rng),
                             fv = random_array({2, 6}, rng);
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), y = t.input(yv, true), b = t.input(bv, true), a = t.input(av, true),
                       c = t.input(cv, true), e = t.input(ev, true), f = t.input(fv, true);
        const sg::expr s = x + y, u = s + b, v = a - c, w = sg::add_scalar(e, 1.5), p = f + f;
        t.backward(sg::sum(u * u) + sg::sum(v * v * v) + sg::sum(w * w) + sg::sum(p * p));
        const xt::xarray<double> uv = xv + yv + bv, vv = av - cv;
        BOOST_TEST_CONTEXT((on ? "on" : "off")) {
            BOOST_TEST(max_diff(t.grad(x), 2.0 * uv) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(y), 2.0 * uv) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(s), 2.0 * uv) <= 1e-14);
            const xt::xarray<double> gb = xt::sum(2.0 * uv, {std::size_t(0)});
            BOOST_TEST(max_diff(t.grad(b), gb) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(a), 3.0 * vv * vv) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(c), -3.0 * vv * vv) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(e), 2.0 * (ev + 1.5)) <= 1e-14);
            BOOST_TEST(max_diff(t.grad(f), 8.0 * fv) <= 1e-14);
            const auto* gu = t.gradient_at(u.id()).data;
            for (const sg::expr& z : {s, x, y}) BOOST_TEST((t.gradient_at(z.id()).data == gu) == on);
            BOOST_TEST((t.gradient_at(a.id()).data == t.gradient_at(v.id()).data) == on);
            BOOST_TEST((t.gradient_at(e.id()).data == t.gradient_at(w.id()).data) == on);
            BOOST_TEST(t.gradient_at(b.id()).data != gu);
            BOOST_TEST(t.gradient_at(c.id()).data != t.gradient_at(v.id()).data);
            BOOST_TEST(t.gradient_at(f.id()).data != t.gradient_at(p.id()).data);
        }
    }
}

// h_t = tanh(x_t w + h u + b): the gate sums hand their gradient down to x_t w, whose gradient
// home they share, so it is written there once; h u's is copied into its own home. At the last
// step x_t w is also read by the loss, so the sums share h u's home instead. And h's gradient
// G u^T reads one transposed copy of u (steps 1 on; h_0 is a constant) unless the own kernels
// are off (then OpenBLAS reads u as it is).
BOOST_AUTO_TEST_CASE(a_gate_sum_shares_its_products_gradient_home) {
    constexpr std::size_t steps = 4, rows = 3, in = 5, hid = 8;
    std::mt19937_64 rng(8);
    std::vector<xt::xarray<double>> xv;
    for (std::size_t k = 0; k < steps; ++k) xv.push_back(random_array({rows, in}, rng));
    const xt::xarray<double> wv = random_array({in, hid}, rng), uv = random_array({hid, hid}, rng),
                             bv = random_array({hid}, rng);
    std::vector<xt::xarray<double>> grads[3];
    for (const int run : {0, 1, 2}) {
        const bool on = run > 0, kernels = run == 1;
        sg::detail::set_small_gemm_kernels(kernels);
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr w = t.input(wv, true), u = t.input(uv, true), b = t.input(bv, true);
        std::vector<sg::expr> xs, p1, p2, s1, s2;
        sg::expr h = t.constant(0.0, {rows, hid}), loss;
        for (std::size_t k = 0; k < steps; ++k) {
            sg::step_scope scope(t, static_cast<int>(k), static_cast<int>(k) - 1);
            xs.push_back(t.input(xv[k], true));
            p1.push_back(sg::matmul(xs.back(), w));
            p2.push_back(sg::matmul(h, u));
            s1.push_back(p1.back() + p2.back());
            s2.push_back(s1.back() + b);
            h = sg::tanh(s2.back());
            const sg::expr l = sg::sum(h * h);
            loss = k ? loss + l : l;
        }
        loss = loss + sg::sum(p1.back() * p1.back());
        t.backward(loss);
        sg::detail::set_small_gemm_kernels(true);
        for (const sg::expr& e : {w, u, b}) grads[run].push_back(t.grad(e));
        for (const sg::expr& e : xs) grads[run].push_back(t.grad(e));
        BOOST_TEST_CONTEXT("run " << run) {
            for (std::size_t k = 0; k < steps; ++k) {
                const auto* g = t.gradient_at(s2[k].id()).data;
                const bool last = k + 1 == steps;
                BOOST_TEST((t.gradient_at(s1[k].id()).data == g) == on);
                BOOST_TEST((t.gradient_at(p1[k].id()).data == g) == (on && !last), k);
                BOOST_TEST((t.gradient_at(p2[k].id()).data == g) == (on && last), k);
            }
            BOOST_TEST(t.optimizations().gradient_homes == (on ? 2 * steps : 0));
            BOOST_TEST(t.optimizations().gradients_transposed == (kernels ? steps - 1 : 0));
        }
    }
    for (const int run : {1, 2})
        for (std::size_t q = 0; q < grads[0].size(); ++q)
            BOOST_TEST(max_diff(grads[0][q], grads[run][q]) <= 1e-13, "run " << run << ", gradient " << q);
    BOOST_TEST(xt::sum(xt::abs(grads[0][0]))() > 0.1);
}

BOOST_AUTO_TEST_CASE(gradcheck_passes_with_optimisations) {
    BOOST_REQUIRE(sg::graph_optimizations());
    for (const char* name : {"user_lstm", "mgu", "record_lstm", "stacked", "embedded_tied", "bidirectional", "gathered",
                             "lstm_sequence"}) {
        auto m = make(name, sg::dtype::f64);
        std::vector<sg::parameter_store*> stores{&m->ps, &m->data};
        const auto report = sg::gradcheck(stores, [&](sg::tape& t) { return m->loss(t); });
        BOOST_TEST(report.passed, name << "\n" << report);
    }
}

BOOST_AUTO_TEST_SUITE_END()
