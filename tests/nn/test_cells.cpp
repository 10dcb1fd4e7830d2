// Recurrent cells: parameter layout, hand-computed steps, a loop-by-loop reference of PyTorch's
// equations, shape errors, and gradient checks over parameters, inputs and initial states.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/linear.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }

template <class Cell>
void set_weights(const Cell& c, xt::xarray<double> w_ih, xt::xarray<double> w_hh, xt::xarray<double> b_ih,
                 xt::xarray<double> b_hh) {
    c.w_ih.assign(w_ih);
    c.w_hh.assign(w_hh);
    c.b_ih.assign(b_ih);
    c.b_hh.assign(b_hh);
}

// Inputs, initial states and targets of a gradient check, in a store of their own.
struct sequence_data {
    sg::parameter_store store{sg::dtype::f64};
    std::vector<sg::parameter> xs;
    sg::parameter h0, c0;
    std::vector<std::vector<int>> classes;
    std::vector<xt::xarray<double>> values;

    sequence_data(std::size_t steps, std::size_t batch, std::size_t in, std::size_t hid, std::size_t out,
                  std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        for (std::size_t k = 0; k < steps; ++k) {
            xs.push_back(store.add("x" + std::to_string(k), random_array({batch, in}, rng)));
            std::vector<int> c;
            for (std::size_t b = 0; b < batch; ++b) c.push_back(static_cast<int>((k + 2 * b) % out));
            classes.push_back(c);
            values.push_back(random_array({batch, out}, rng));
        }
        h0 = store.add("h0", random_array({batch, hid}, rng, 0.5));
        c0 = store.add("c0", random_array({batch, hid}, rng, 0.5));
    }
    std::vector<sg::expr> inputs(sg::tape& t) const {
        std::vector<sg::expr> v;
        for (const auto& p : xs) v.push_back(t.param(p));
        return v;
    }
};

enum class loss_kind { cross_entropy, mse };

// Cross-entropy summed over time (and rows), or the sum over time of per-step mse.
template <class State>
sg::expr sequence_loss(sg::tape& t, const std::vector<State>& states, const nn::linear& out, const sequence_data& d,
                       loss_kind kind) {
    sg::expr total;
    for (std::size_t k = 0; k < states.size(); ++k) {
        const sg::expr y = out(nn::hidden(states[k]));
        const sg::expr l = kind == loss_kind::cross_entropy ? sg::cross_entropy(y, d.classes[k], sg::reduction::sum)
                                                            : sg::mse_loss(y, t.input(d.values[k]));
        total = k == 0 ? l : total + l;
    }
    return total;
}

void expect_pass(sg::parameter_store& model, sg::parameter_store& data,
                 const std::function<sg::expr(sg::tape&)>& loss) {
    sg::parameter_store* stores[] = {&model, &data};
    const auto report = sg::gradcheck(stores, loss);
    BOOST_TEST(report.passed, "" << report);
    BOOST_TEST(report.checked > 0u);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cells)

BOOST_AUTO_TEST_CASE(parameter_names_and_pytorch_layouts) {
    sg::parameter_store ps;
    nn::rnn_cell rnn(sg::parameter_scope(ps, "rnn"), 3, 4);
    nn::lstm_cell lstm(sg::parameter_scope(ps, "enc").sub("lstm0"), 3, 4);
    nn::gru_cell gru(sg::parameter_scope(ps, "gru"), 3, 4);
    BOOST_TEST(lstm.w_ih.name() == "enc.lstm0.w_ih");
    BOOST_TEST(ps.contains("enc.lstm0.b_hh"));
    BOOST_TEST((rnn.w_ih.shape() == (sg::shape{4, 3})));
    BOOST_TEST((rnn.w_hh.shape() == (sg::shape{4, 4})));
    BOOST_TEST((lstm.w_ih.shape() == (sg::shape{16, 3})));
    BOOST_TEST((lstm.w_hh.shape() == (sg::shape{16, 4})));
    BOOST_TEST((lstm.b_ih.shape() == (sg::shape{16})));
    BOOST_TEST((gru.w_ih.shape() == (sg::shape{12, 3})));
    BOOST_TEST((gru.b_hh.shape() == (sg::shape{12})));
    BOOST_TEST(lstm.input_size == 3u);
    BOOST_TEST(lstm.hidden_size == 4u);
    BOOST_TEST(ps.size() == 12u);
    BOOST_CHECK_THROW(nn::lstm_cell(sg::parameter_scope(ps, "enc").sub("lstm0"), 3, 4), sg::value_error);
    BOOST_CHECK_THROW(nn::gru_cell(sg::parameter_scope(ps, "zero"), 3, 0), sg::value_error);
}

BOOST_AUTO_TEST_CASE(default_init_is_pytorch_uniform) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::lstm_cell a(sg::parameter_scope(ps, "a"), 3, 16);
    nn::lstm_cell b(sg::parameter_scope(ps, "b"), 3, 16);
    const double k = 1.0 / std::sqrt(16.0);
    for (const sg::parameter* p : {&a.w_ih, &a.w_hh, &a.b_ih, &a.b_hh}) {
        const auto& v = p->value<double>();
        BOOST_TEST(xt::amax(xt::abs(v))() <= k);
        BOOST_TEST(xt::amax(xt::abs(v))() > 0.5 * k);  // spread over the range, not all zero
    }
    BOOST_TEST(!all_close(a.w_hh.value<double>(), b.w_hh.value<double>(), 1e-3));  // named apart, drawn apart
    std::mt19937_64 r1(7), r2(7);
    nn::gru_cell c(sg::parameter_scope(ps, "c"), 3, 4, r1);
    nn::gru_cell d(sg::parameter_scope(ps, "d"), 3, 4, r2);
    BOOST_TEST(all_close(c.w_ih.value<double>(), d.w_ih.value<double>(), 0.0));  // same generator, same values
}

BOOST_AUTO_TEST_CASE(rnn_tanh_and_relu_by_hand) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::rnn_cell cell(sg::parameter_scope(ps, "rnn"), 2, 1);
    nn::rnn_cell irnn(sg::parameter_scope(ps, "irnn"), 2, 1, nn::rnn_activation::relu);
    for (const nn::rnn_cell* c : {&cell, &irnn})
        set_weights(*c, arr({1, 2}, {0.5, -0.25}), arr({1, 1}, {0.8}), arr({1}, {0.1}), arr({1}, {-0.2}));
    // row 0: x = [1, 2], h = 0.5:  0.5 - 0.5 + 0.1 + 0.8 * 0.5 - 0.2 = 0.3    -> tanh 0.29131261245159, relu 0.3
    // row 1: x = [-1, 0], h = -1: -0.5 + 0.1 - 0.8 - 0.2 = -1.4               -> tanh -0.88535164820226, relu 0
    sg::tape t(sg::dtype::f64);
    const sg::expr x = t.input(arr({2, 2}, {1.0, 2.0, -1.0, 0.0}));
    const sg::expr h = t.input(arr({2, 1}, {0.5, -1.0}));
    BOOST_TEST(all_close(t.value(cell(x, h)), arr({2, 1}, {0.2913126124515909, -0.8853516482022625}), 1e-14));
    BOOST_TEST(all_close(t.value(irnn(x, h)), arr({2, 1}, {0.3, 0.0}), 1e-14));
}

BOOST_AUTO_TEST_CASE(lstm_one_step_by_hand) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 1, 1);
    // Gate rows in order i, f, g, o.
    set_weights(cell, arr({4, 1}, {1.0, 2.0, 0.5, -1.0}), arr({4, 1}, {0.5, -0.5, 1.0, 0.25}),
                arr({4}, {0.0, 1.0, 0.0, 0.0}), arr({4}, {0.5, 0.0, -0.5, 0.0}));
    // x = 1, h = 0.5, c = -1:
    //   i = sigmoid(1 + 0 + 0.25 + 0.5)    = sigmoid(1.75)   = 0.85195280196831
    //   f = sigmoid(2 + 1 - 0.25 + 0)      = sigmoid(2.75)   = 0.93991334982599
    //   g = tanh(0.5 + 0 + 0.5 - 0.5)      = tanh(0.5)       = 0.46211715726001
    //   o = sigmoid(-1 + 0 + 0.125 + 0)    = sigmoid(-0.875) = 0.29421497216299
    //   c' = f * (-1) + i * g = -0.54621134286070;  h' = o * tanh(c') = -0.14642352720964
    sg::tape t(sg::dtype::f64);
    const nn::lstm_state s{t.input(arr({1, 1}, {0.5})), t.input(arr({1, 1}, {-1.0}))};
    const nn::lstm_state r = cell(t.input(arr({1, 1}, {1.0})), s);
    BOOST_TEST(t.item(r.c) == -0.5462113428606967, boost::test_tools::tolerance(1e-13));
    BOOST_TEST(t.item(r.h) == -0.1464235272096365, boost::test_tools::tolerance(1e-13));
    BOOST_TEST(t.item(nn::hidden(r)) == t.item(r.h));
}

BOOST_AUTO_TEST_CASE(gru_one_step_by_hand) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::gru_cell cell(sg::parameter_scope(ps, "gru"), 1, 1);
    // Gate rows in order r, z, n.
    set_weights(cell, arr({3, 1}, {1.0, -1.0, 2.0}), arr({3, 1}, {0.5, 0.25, -1.0}), arr({3}, {0.0, 0.5, 0.1}),
                arr({3}, {0.2, 0.0, 0.3}));
    // x = 1, h = 0.5:
    //   r = sigmoid(1 + 0 + 0.25 + 0.2)          = sigmoid(1.45)   = 0.80999843398469
    //   z = sigmoid(-1 + 0.5 + 0.125 + 0)        = sigmoid(-0.375) = 0.40733340004593
    //   n = tanh(2 + 0.1 + r * (-0.5 + 0.3))     = tanh(2.1 - 0.2 r) = 0.95937513703984
    //   h' = (1 - z) * n + z * 0.5               = 0.77225630057284
    // (r multiplies h W_hn^T + b_hn, as in PyTorch, not h before the product.)
    sg::tape t(sg::dtype::f64);
    const sg::expr h = cell(t.input(arr({1, 1}, {1.0})), t.input(arr({1, 1}, {0.5})));
    BOOST_TEST(t.item(h) == 0.7722563005728391, boost::test_tools::tolerance(1e-13));
}

// Two hidden units, three inputs, two rows, random weights: every gate block at its PyTorch rows.
BOOST_AUTO_TEST_CASE(lstm_and_gru_match_loop_reference) {
    const std::size_t B = 2, I = 3, H = 2;
    std::mt19937_64 rng(3);
    sg::parameter_store ps(sg::dtype::f64);
    nn::lstm_cell lstm(sg::parameter_scope(ps, "lstm"), I, H, rng);
    nn::gru_cell gru(sg::parameter_scope(ps, "gru"), I, H, rng);
    const xt::xarray<double> x = random_array({B, I}, rng), h = random_array({B, H}, rng);
    const xt::xarray<double> c = random_array({B, H}, rng);
    auto pre = [&](const auto& cell, std::size_t b, std::size_t j, bool with_hh, bool with_ih) {
        const auto &wi = cell.w_ih.template value<double>(), &wh = cell.w_hh.template value<double>();
        double v = 0;
        if (with_ih) {
            v += cell.b_ih.template value<double>()(j);
            for (std::size_t k = 0; k < I; ++k) v += wi(j, k) * x(b, k);
        }
        if (with_hh) {
            v += cell.b_hh.template value<double>()(j);
            for (std::size_t k = 0; k < H; ++k) v += wh(j, k) * h(b, k);
        }
        return v;
    };
    xt::xarray<double> lh = xt::zeros<double>({B, H}), lc = lh, gh = lh;
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < H; ++j) {
            const double i = sigm(pre(lstm, b, j, true, true)), f = sigm(pre(lstm, b, H + j, true, true));
            const double g = std::tanh(pre(lstm, b, 2 * H + j, true, true));
            const double o = sigm(pre(lstm, b, 3 * H + j, true, true));
            lc(b, j) = f * c(b, j) + i * g;
            lh(b, j) = o * std::tanh(lc(b, j));
            const double r = sigm(pre(gru, b, j, true, true)), z = sigm(pre(gru, b, H + j, true, true));
            const double n = std::tanh(pre(gru, b, 2 * H + j, false, true) + r * pre(gru, b, 2 * H + j, true, false));
            gh(b, j) = (1 - z) * n + z * h(b, j);
        }
    sg::tape t(sg::dtype::f64);
    const sg::expr xe = t.input(x), he = t.input(h);
    const nn::lstm_state s = lstm(xe, {he, t.input(c)});
    BOOST_TEST(all_close(t.value(s.h), lh, 1e-14));
    BOOST_TEST(all_close(t.value(s.c), lc, 1e-14));
    BOOST_TEST(all_close(t.value(gru(xe, he)), gh, 1e-14));
}

BOOST_AUTO_TEST_CASE(zero_initial_states_and_float_tapes) {
    sg::parameter_store ps;
    nn::lstm_cell lstm(sg::parameter_scope(ps, "lstm"), 3, 4);
    sg::tape t;  // float
    const nn::lstm_state s0 = lstm.initial_state(t, 2);
    BOOST_TEST((s0.h.shape() == (sg::shape{2, 4})));
    BOOST_TEST(xt::all(xt::equal(t.value(s0.c), 0.0)));
    const nn::lstm_state s1 = lstm(t.input(xt::xarray<float>(xt::ones<float>({2, 3}))), s0);
    BOOST_TEST((s1.h.shape() == (sg::shape{2, 4})));
    // Masks are built in the tape's scalar type too.
    const std::vector<sg::expr> xs{t.constant(1.0, {2, 3}), t.constant(-1.0, {2, 3})};
    const auto states = nn::unroll_masked(t, lstm, xs, s0, std::vector<std::size_t>{2, 1});
    BOOST_TEST(t.value(states[1].c)(1, 0) == t.value(states[0].c)(1, 0));
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_cell_and_shapes) {
    sg::parameter_store ps;
    nn::lstm_cell lstm(sg::parameter_scope(ps, "enc"), 3, 4);
    nn::gru_cell gru(sg::parameter_scope(ps, "dec"), 3, 4);
    sg::tape t;
    const sg::expr h = gru.initial_state(t, 2);
    try {
        gru(t.constant(0.0, {2, 5}), h);
        BOOST_FAIL("expected a shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("gru_cell 'dec'") != std::string::npos, m);
        BOOST_TEST(m.find("[2, 5]") != std::string::npos, m);
        BOOST_TEST(m.find("[B, 3]") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(gru(t.constant(0.0, {3, 3}), h), sg::shape_error);  // batch mismatch
    BOOST_CHECK_THROW(lstm(t.constant(0.0, {2, 3}), {h, t.constant(0.0, {2, 5})}), sg::shape_error);
    BOOST_CHECK_THROW(lstm(t.constant(0.0, {3}), lstm.initial_state(t, 2)), sg::shape_error);  // rank 1
    // A sequence [T, I] without its batch axis: unroll hands the cell x [I]; the message says so.
    seqgrad_test::expect_error<sg::shape_error>(
        [&] {
            nn::unroll(t, lstm, t.constant(0.0, {5, 3}), lstm.initial_state(t, 2));
        },
        "input x [3], h [2, 4] (expected x [B, 3] and h [B, 4] with the same B; nn::unroll gives a cell one step "
        "of a time-major sequence [T, B, 3])");
}

// Every cell, unrolled over 1, 2 and 7 steps under both losses: gradients with respect to the
// parameters, every input and the initial state(s) against central differences.
template <class Cell, class... Extra>
void check_cell(const char* name, Extra... extra) {
    const std::size_t B = 2, I = 3, H = 4, C = 3;
    for (std::size_t steps : {1u, 2u, 7u})
        for (loss_kind kind : {loss_kind::cross_entropy, loss_kind::mse}) {
            BOOST_TEST_CONTEXT(name << ", steps " << steps << (kind == loss_kind::mse ? ", mse" : ", cross-entropy")) {
                sequence_data d(steps, B, I, H, C, 11 + steps);
                sg::parameter_store model(sg::dtype::f64);
                const nn::linear out(sg::parameter_scope(model, "out"), H, C);
                const Cell cell(sg::parameter_scope(model, name), I, H, extra...);
                expect_pass(model, d.store, [&](sg::tape& t) {
                    if constexpr (std::is_same_v<Cell, nn::lstm_cell>) {
                        const nn::lstm_state s0{t.param(d.h0), t.param(d.c0)};
                        return sequence_loss(t, nn::unroll(t, cell, d.inputs(t), s0), out, d, kind);
                    } else {
                        return sequence_loss(t, nn::unroll(t, cell, d.inputs(t), t.param(d.h0)), out, d, kind);
                    }
                });
            }
        }
}

BOOST_AUTO_TEST_CASE(gradcheck_rnn_tanh) { check_cell<nn::rnn_cell>("rnn"); }
BOOST_AUTO_TEST_CASE(gradcheck_rnn_relu) { check_cell<nn::rnn_cell>("irnn", nn::rnn_activation::relu); }
BOOST_AUTO_TEST_CASE(gradcheck_lstm) { check_cell<nn::lstm_cell>("lstm"); }
BOOST_AUTO_TEST_CASE(gradcheck_gru) { check_cell<nn::gru_cell>("gru"); }

BOOST_AUTO_TEST_SUITE_END()
