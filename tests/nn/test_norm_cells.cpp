// Layer-normalised LSTM and GRU cells: one step against the equations computed with xtensor,
// gradient checks through an unroll, and the fused layer_norm against its composition.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

// Row-wise layer norm with gain g and shift b, in plain xtensor.
A ln(const A& x, const A& g, const A& b, double eps) {
    A y = x;
    const std::size_t n = x.shape()[1];
    for (std::size_t r = 0; r < x.shape()[0]; ++r) {
        auto row = xt::view(x, r, xt::all());
        const double mu = xt::mean(row)();
        const double var = xt::mean(xt::square(row - mu))();
        for (std::size_t j = 0; j < n; ++j) y(r, j) = g(j) * (x(r, j) - mu) / std::sqrt(var + eps) + b(j);
    }
    return y;
}
A sigm(const A& v) { return 1.0 / (1.0 + xt::exp(-v)); }
A cols(const A& m, std::size_t part, std::size_t h) {
    return xt::view(m, xt::all(), xt::range(part * h, (part + 1) * h));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(norm_cells)

BOOST_AUTO_TEST_CASE(layer_norm_lstm_step_matches_the_equations) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(1);
    nn::layer_norm_lstm_cell cell(sg::parameter_scope(ps, "ln"), 3, 4, rng);
    // Gains and shifts away from their initial 1 and 0, so that each one matters.
    cell.g_ih.assign(1.0 + 0.5 * random_array({16}, rng));
    cell.g_hh.assign(1.0 + 0.5 * random_array({16}, rng));
    cell.g_c.assign(1.0 + 0.5 * random_array({4}, rng));
    cell.b_c.assign(random_array({4}, rng));
    const A x = random_array({2, 3}, rng), h = random_array({2, 4}, rng), c = random_array({2, 4}, rng);
    sg::tape t(sg::dtype::f64);
    const nn::lstm_state s = cell(t.input(x), {t.input(h), t.input(c)});

    const double eps = cell.eps;
    const A zero = xt::zeros<double>({16});
    const A gates =
        ln(xt::linalg::dot(x, xt::transpose(cell.w_ih.value_as_double())), cell.g_ih.value_as_double(), zero, eps) +
        ln(xt::linalg::dot(h, xt::transpose(cell.w_hh.value_as_double())), cell.g_hh.value_as_double(), zero, eps) +
        cell.b.value_as_double();
    const A i = sigm(cols(gates, 0, 4)), f = sigm(cols(gates, 1, 4)), g = xt::tanh(cols(gates, 2, 4)),
            o = sigm(cols(gates, 3, 4));
    const A c2 = f * c + i * g;
    const A h2 = o * xt::tanh(ln(c2, cell.g_c.value_as_double(), cell.b_c.value_as_double(), eps));
    BOOST_TEST(xt::allclose(t.value(s.c), c2, 1e-12, 1e-12));
    BOOST_TEST(xt::allclose(t.value(s.h), h2, 1e-12, 1e-12));
    BOOST_CHECK_THROW(cell(t.input(random_array({2, 5}, rng)), {t.input(h), t.input(c)}), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(layer_norm_gru_step_matches_the_equations) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(2);
    nn::layer_norm_gru_cell cell(sg::parameter_scope(ps, "lng"), 3, 4, rng);
    cell.g_ih.assign(1.0 + 0.5 * random_array({12}, rng));
    cell.g_hh.assign(1.0 + 0.5 * random_array({12}, rng));
    const A x = random_array({2, 3}, rng), h = random_array({2, 4}, rng);
    sg::tape t(sg::dtype::f64);
    const A got = t.value(cell(t.input(x), t.input(h)));
    const A zero = xt::zeros<double>({12});
    const A a = ln(xt::linalg::dot(x, xt::transpose(cell.w_ih.value_as_double())), cell.g_ih.value_as_double(), zero,
                   cell.eps) +
                cell.b_ih.value_as_double();
    const A u = ln(xt::linalg::dot(h, xt::transpose(cell.w_hh.value_as_double())), cell.g_hh.value_as_double(), zero,
                   cell.eps) +
                cell.b_hh.value_as_double();
    const A r = sigm(cols(a, 0, 4) + cols(u, 0, 4)), z = sigm(cols(a, 1, 4) + cols(u, 1, 4));
    const A n = xt::tanh(cols(a, 2, 4) + r * cols(u, 2, 4));
    BOOST_TEST(xt::allclose(got, (1.0 - z) * n + z * h, 1e-12, 1e-12));
}

BOOST_AUTO_TEST_CASE(gradcheck_through_unrolled_layer_norm_cells) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(3);
    nn::layer_norm_lstm_cell lstm(sg::parameter_scope(ps, "lstm"), 3, 4, rng);
    nn::layer_norm_gru_cell gru(sg::parameter_scope(ps, "gru"), 4, 3, rng);
    lstm.b_c.assign(random_array({4}, rng));
    lstm.g_c.assign(1.0 + 0.5 * random_array({4}, rng));
    std::vector<A> xs_v;
    for (int k = 0; k < 4; ++k) xs_v.push_back(random_array({2, 3}, rng));
    const auto report = sg::gradcheck(ps, [&](sg::tape& t) {
        std::vector<sg::expr> xs;
        for (const A& v : xs_v) xs.push_back(t.input(v));
        const auto s1 = nn::unroll(t, lstm, std::span<const sg::expr>(xs));
        std::vector<sg::expr> hs;
        for (const auto& s : s1) hs.push_back(s.h);
        const auto s2 = nn::unroll(t, gru, std::span<const sg::expr>(hs));
        return sg::sum(sg::square(s2.back())) + sg::sum(s1.back().c);
    });
    BOOST_TEST(report.passed, report);
}

BOOST_AUTO_TEST_CASE(fused_layer_norm_equals_its_composition) {
    std::mt19937_64 rng(4);
    const A xv = random_array({3, 6}, rng), gv = random_array({6}, rng), bv = random_array({6}, rng),
            wv = random_array({3, 6}, rng);
    A grads[2][3];
    A values[2];
    for (int fused = 0; fused < 2; ++fused) {
        sg::tape t(sg::dtype::f64);
        auto x = t.input(xv, true), g = t.input(gv, true), b = t.input(bv, true);
        sg::expr y;
        if (fused) {
            y = sg::layer_norm(x, g, b, 1e-5);
        } else {
            const sg::expr centred = x - sg::mean(x, -1, true);
            y = centred / sg::sqrt(sg::mean(sg::square(centred), -1, true) + 1e-5) * g + b;
        }
        t.backward(sg::sum(y * t.input(wv)));
        values[fused] = t.value(y);
        grads[fused][0] = t.grad(x);
        grads[fused][1] = t.grad(g);
        grads[fused][2] = t.grad(b);
    }
    BOOST_TEST(xt::allclose(values[0], values[1], 1e-12, 1e-12));
    for (int k = 0; k < 3; ++k) BOOST_TEST(xt::allclose(grads[0][k], grads[1][k], 1e-10, 1e-10), "input " << k);
}

BOOST_AUTO_TEST_CASE(float_layer_norm_keeps_its_statistics_on_long_rows) {
    // Rows of 4096 with mean 10 and sd 1: float sums over the row lost the mean and variance (y and
    // dgamma off by 2e-5, dx by 1e-6 against double; 8e-7, 1e-6 and 2e-7 with double sums).
    std::mt19937_64 rng(6);
    const std::size_t n = 4096;
    A xv = random_array({2, n}, rng) + 10.0, gv = random_array({n}, rng), bv = random_array({n}, rng),
      wv = random_array({2, n}, rng);
    for (A* a : {&xv, &gv, &bv, &wv})
        for (double& v : *a) v = static_cast<float>(v);  // both tapes see the same inputs
    A y[2], dx[2], dg[2];
    for (int k = 0; k < 2; ++k) {
        sg::tape t(k ? sg::dtype::f32 : sg::dtype::f64);
        auto x = t.input(xv, true), g = t.input(gv, true), b = t.input(bv);
        const sg::expr out = sg::layer_norm(x, g, b, 1e-5);
        t.backward(sg::sum(out * t.input(wv)));
        y[k] = t.value(out);
        dx[k] = t.grad(x);
        dg[k] = t.grad(g);
    }
    BOOST_TEST(xt::amax(xt::abs(y[1] - y[0]))() < 4e-6);
    BOOST_TEST(xt::amax(xt::abs(dx[1] - dx[0]))() < 5e-7);
    BOOST_TEST(xt::amax(xt::abs(dg[1] - dg[0]))() < 5e-6);
}

BOOST_AUTO_TEST_SUITE_END()
