// Every op against values computed by hand (the gradients are covered by test_registry.cpp).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
using A = xt::xarray<double>;

BOOST_AUTO_TEST_SUITE(values)

BOOST_AUTO_TEST_CASE(arithmetic_with_broadcasting) {
    sg::tape t(sg::dtype::f64);
    auto a = t.input(A{{1, 2, 3}, {4, 5, 6}});
    auto row = t.input(A{10, 20, 30});
    auto c24 = t.input(col({2, 4}));
    expect_near(t.value(a + row), A{{11, 22, 33}, {14, 25, 36}});
    expect_near(t.value(a - c24), A{{-1, 0, 1}, {0, 1, 2}});
    expect_near(t.value(a * c24), A{{2, 4, 6}, {16, 20, 24}});
    expect_near(t.value(row / a), A{{10, 10, 10}, {2.5, 4, 5}});
    expect_near(t.value(-a), A{{-1, -2, -3}, {-4, -5, -6}});
    expect_near(t.value(a + 0.5), A{{1.5, 2.5, 3.5}, {4.5, 5.5, 6.5}});
    expect_near(t.value(2.0 * a), A{{2, 4, 6}, {8, 10, 12}});
    expect_near(t.value(1.0 - a), A{{0, -1, -2}, {-3, -4, -5}});
    expect_near(t.value(6.0 / c24), col({3, 1.5}));
}

BOOST_AUTO_TEST_CASE(unary_functions) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{0.0, 1.0, 4.0});
    expect_near(t.value(sg::exp(x)), A{1.0, std::exp(1.0), std::exp(4.0)});
    expect_near(t.value(sg::log(x + 1.0)), A{0.0, std::log(2.0), std::log(5.0)});
    expect_near(t.value(sg::square(x)), A{0, 1, 16});
    expect_near(t.value(sg::sqrt(x)), A{0, 1, 2});
    expect_near(t.value(sg::pow(x + 1.0, 1.5)), A{1.0, std::pow(2.0, 1.5), std::pow(5.0, 1.5)});
}

BOOST_AUTO_TEST_CASE(activations) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{-2.0, 0.0, 3.0});
    expect_near(t.value(sg::tanh(x)), A{std::tanh(-2.0), 0.0, std::tanh(3.0)});
    expect_near(t.value(sg::sigmoid(x)), A{1 / (1 + std::exp(2.0)), 0.5, 1 / (1 + std::exp(-3.0))});
    expect_near(t.value(sg::relu(x)), A{0, 0, 3});
    // Large inputs stay finite: sigmoid(-800) = 0, not NaN.
    auto big = t.input(A{-800.0, 800.0});
    expect_near(t.value(sg::sigmoid(big)), A{0.0, 1.0});
}

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax) {
    sg::tape t(sg::dtype::f64);
    // Row [0, ln 2, ln 3, ln 4]: softmax = [1, 2, 3, 4] / 10. A huge row checks stability.
    auto x = t.input(A{{0.0, std::log(2.0), std::log(3.0), std::log(4.0)}, {1000.0, 1000.0, 1000.0, 1000.0}});
    expect_near(t.value(sg::softmax(x)), A{{0.1, 0.2, 0.3, 0.4}, {0.25, 0.25, 0.25, 0.25}});
    expect_near(t.value(sg::log_softmax(x)), A{{std::log(0.1), std::log(0.2), std::log(0.3), std::log(0.4)},
                                               {std::log(0.25), std::log(0.25), std::log(0.25), std::log(0.25)}});
}

BOOST_AUTO_TEST_CASE(matmul_all_transpositions_and_transpose) {
    sg::tape t(sg::dtype::f64);
    auto a = t.input(A{{1, 2}, {3, 4}, {5, 6}});  // [3, 2]
    auto b = t.input(A{{1, 0, 2}, {0, 1, 3}});    // [2, 3]
    A ab = {{1, 2, 8}, {3, 4, 18}, {5, 6, 28}};
    expect_near(t.value(sg::matmul(a, b)), ab);
    expect_near(t.value(sg::transpose(a)), A{{1, 3, 5}, {2, 4, 6}});
    expect_near(t.value(sg::matmul(sg::T(sg::transpose(a)), sg::T(sg::transpose(b)))), ab);
    expect_near(t.value(sg::matmul(a, sg::T(sg::transpose(b)))), ab);
    expect_near(t.value(sg::matmul(sg::T(sg::transpose(a)), b)), ab);
    // Single row and single column go through GEMV.
    auto r = t.input(A{{1, 1}});
    expect_near(t.value(sg::matmul(r, b)), A{{1, 1, 5}});
    expect_near(t.value(sg::matmul(a, t.input(col({1, -1})))), col({-1, -1, -1}));
    // float goes through SGEMM.
    sg::tape f(sg::dtype::f32);
    auto fa = f.input(A{{1, 2}, {3, 4}, {5, 6}});
    auto fb = f.input(A{{1, 0, 2}, {0, 1, 3}});
    expect_near(f.value(sg::matmul(fa, fb)), ab, 1e-6);
}

BOOST_AUTO_TEST_CASE(reductions) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3}, {4, 5, 6}});
    BOOST_TEST(t.item(sg::sum(x)) == 21.0);
    BOOST_TEST(t.item(sg::mean(x)) == 3.5);
    expect_near(t.value(sg::sum(x, 0)), A{5, 7, 9});
    expect_near(t.value(sg::sum(x, 1)), A{6, 15});
    expect_near(t.value(sg::sum(x, -1, true)), col({6, 15}));
    expect_near(t.value(sg::mean(x, 0)), A{2.5, 3.5, 4.5});
    BOOST_TEST(sg::sum(x).shape().rank() == 0u);
}

// Float sums accumulate in double (PyTorch's CPU accumulation type): a float running sum of 10^6
// entries of 0.1f read 100958 (1% off), a sum of 500000 along the first axis 50177 and along the
// last axis 49992.5 (PyTorch: 100000.008, 49999.99, 50000.004).
BOOST_AUTO_TEST_CASE(float_sums_do_not_drift) {
    sg::tape t(sg::dtype::f32);
    const auto tenths = [&](std::size_t rows, std::size_t cols) {
        return t.input(A(xt::ones<double>({rows, cols}) * 0.1));
    };
    BOOST_TEST(t.item(sg::sum(tenths(1000, 1000))) == 100000.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(t.item(sg::mean(tenths(1000, 1000))) == 0.1, boost::test_tools::tolerance(1e-6));
    expect_near(t.value(sg::sum(tenths(500000, 2), 0)), A{50000.0, 50000.0}, 0.01);
    expect_near(t.value(sg::sum(tenths(2, 500000), 1)), A{50000.0, 50000.0}, 0.01);
    expect_near(t.value(sg::sum(tenths(2, 500000), -1, true)), col({50000.0, 50000.0}), 0.01);
}

// A broadcast input's gradient sums the output's over the rows that read it: over 500,000 rows of
// 0.1 in float that must read 5e4 (a float running sum read 1% off). add's sum is its own
// (reduce_binary), where's the engine's (sum_to_shape); rows of a [2, 1] column, and a bias row.
BOOST_AUTO_TEST_CASE(float_broadcast_gradients_do_not_drift) {
    sg::tape t(sg::dtype::f32);
    const std::size_t n = 500000;
    auto x = t.input(A(xt::zeros<double>({n, std::size_t(2)})));
    auto xt_ = t.input(A(xt::zeros<double>({std::size_t(2), n})));
    auto b = t.input(A{0.0, 0.0}, true), c = t.input(A(xt::zeros<double>({2, 1})), true),
         w = t.input(A{0.0, 0.0}, true);
    auto picks_w = t.input(A(xt::zeros<double>({n, std::size_t(2)})));  // 0: where takes w everywhere
    auto loss = sg::sum(sg::mul_scalar(x + b, 0.1)) + sg::sum(sg::mul_scalar(xt_ + c, 0.1)) +
                sg::sum(sg::mul_scalar(sg::where(picks_w, x, w), 0.1));
    t.backward(loss);
    expect_near(t.grad(b), A{50000.0, 50000.0}, 0.01);
    expect_near(t.grad(c), col({50000.0, 50000.0}), 0.01);
    expect_near(t.grad(w), A{50000.0, 50000.0}, 0.01);
}

// A row sum's gradient spread back over its rows, as the input's only gradient and added to one
// that arrived first (the engine's accumulation in the same pass), in both orders.
BOOST_AUTO_TEST_CASE(row_sum_gradient_with_and_without_an_earlier_contribution) {
    for (const bool sum_first : {false, true}) {
        sg::tape t(sg::dtype::f64);
        auto x = t.input(A{{1, 2, 3}, {4, 5, 6}}, true);
        auto w = t.input(A{10, 20});
        const sg::expr rows = sum_first ? sg::sum(x, 1) : sg::expr{}, sq = sg::sum(x * x);
        t.backward(sg::sum((sum_first ? rows : sg::sum(x, 1)) * w) + sq);
        expect_near(t.grad(x), A{{12, 14, 16}, {28, 30, 32}});
        sg::tape u(sg::dtype::f64);
        auto y = u.input(A{{1, 2, 3}, {4, 5, 6}}, true);
        u.backward(sg::sum(sg::sum(y, -1, true) * u.input(col({10, 20}))));
        expect_near(u.grad(y), A{{10, 10, 10}, {20, 20, 20}});
    }
}

BOOST_AUTO_TEST_CASE(shape_ops) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3}, {4, 5, 6}});
    expect_near(t.value(sg::reshape(x, {3, 2})), A{{1, 2}, {3, 4}, {5, 6}});
    expect_near(t.value(sg::concat({x, x * 10.0}, 0)), A{{1, 2, 3}, {4, 5, 6}, {10, 20, 30}, {40, 50, 60}});
    expect_near(t.value(sg::concat({x, t.input(col({7, 8}))}, 1)), A{{1, 2, 3, 7}, {4, 5, 6, 8}});
    expect_near(t.value(sg::slice(x, 1, 1, 3)), A{{2, 3}, {5, 6}});
    expect_near(t.value(sg::slice(x, 0, 1, 2)), A{{4, 5, 6}});
    auto parts = sg::split(t.input(A{{1, 2, 3, 4}}), 2, 1);
    BOOST_TEST_REQUIRE(parts.size() == 2u);
    expect_near(t.value(parts[1]), A{{3, 4}});
    expect_near(t.value(sg::broadcast_to(t.input(A{1, 2}), {2, 2})), A{{1, 2}, {1, 2}});
    const int ids[] = {2, 0, 2};
    auto table = t.input(A{{1, 1}, {2, 2}, {3, 3}});
    expect_near(t.value(sg::gather_rows(table, ids)), A{{3, 3}, {1, 1}, {3, 3}});
    const int cols[] = {2, 0};
    expect_near(t.value(sg::pick(x, cols)), A{3, 4});
    expect_near(t.value(sg::stop_gradient(x)), t.value(x));
}

// A parameter with no entries is read in place from its store, where an empty array's data is a
// null pointer: concat, stop_gradient and gather_rows passed it to memcpy (with a count of 0,
// undefined behaviour that the sanitizer build aborts on). They copy with std::copy_n now.
BOOST_AUTO_TEST_CASE(shape_ops_copy_from_a_parameter_without_entries) {
    for (const sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
        sg::parameter_store ps(dt);
        const auto empty = ps.add("empty", A(xt::zeros<double>({2, 0})));
        sg::tape t(dt);
        auto e = t.param(empty);
        auto x = t.input(A{{1, 2, 3}, {4, 5, 6}}, true);
        const int rows[] = {1, 0, 1};
        const sg::expr joined = sg::concat({e, x, e}, 1), kept = sg::stop_gradient(e);
        const sg::expr picked = sg::gather_rows(e, rows);
        expect_near(t.value(joined), A{{1, 2, 3}, {4, 5, 6}});
        BOOST_TEST(t.value(kept).size() == 0u);
        BOOST_TEST(t.value(picked).shape(0) == 3u);
        BOOST_TEST(t.value(picked).size() == 0u);
        t.backward(sg::sum(joined * joined));
        expect_near(t.grad(x), A{{2, 4, 6}, {8, 10, 12}});
    }
}

BOOST_AUTO_TEST_CASE(losses) {
    sg::tape t(sg::dtype::f64);
    // Row 0: logits [0, ln 3] -> p = [1/4, 3/4]; target 1: loss -ln(3/4). Row 1 ignored.
    auto logits = t.input(A{{0.0, std::log(3.0)}, {5.0, -5.0}, {0.0, 0.0}});
    const int targets[] = {1, -1, 0};
    const double l0 = -std::log(0.75), l2 = std::log(2.0);
    expect_near(t.value(sg::cross_entropy(logits, targets, sg::reduction::none)), A{l0, 0.0, l2});
    BOOST_TEST(std::abs(t.item(sg::cross_entropy(logits, targets)) - (l0 + l2)) < 1e-12);
    BOOST_TEST(std::abs(t.item(sg::cross_entropy(logits, targets, sg::reduction::mean)) - (l0 + l2) / 2) < 1e-12);
    const int none_kept[] = {-1, -1, -1};  // the documented 0 (PyTorch: NaN), and no gradient
    auto z = t.input(A{{0.0, 1.0}, {2.0, 3.0}, {4.0, 5.0}}, true);
    const sg::expr empty_mean = sg::cross_entropy(z, none_kept, sg::reduction::mean);
    BOOST_TEST(t.item(empty_mean) == 0.0);
    t.backward(empty_mean);
    expect_near(t.grad(z), xt::zeros<double>({3, 2}));
    auto p = t.input(A{1.0, 2.0, 4.0});
    auto y = t.input(A{1.0, 0.0, 1.0});
    BOOST_TEST(std::abs(t.item(sg::mse_loss(p, y)) - 13.0 / 3.0) < 1e-12);  // (0 + 4 + 9) / 3
    BOOST_TEST(t.item(sg::mse_loss(p, y, sg::reduction::sum)) == 13.0);
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient_is_softmax_minus_onehot) {
    sg::tape t(sg::dtype::f64);
    auto logits = t.input(A{{0.0, std::log(3.0)}}, true);
    const int target[] = {0};
    t.backward(sg::cross_entropy(logits, target));
    expect_near(t.grad(logits), A{{0.25 - 1.0, 0.75}});
}

// A target whose logit is -inf: the loss is inf and the gradient softmax - onehot stays finite
// (PyTorch: [1/4, -1, 3/4] below). The backward rebuilt the row's log-sum-exp as loss + logit =
// inf - inf and gave NaN across the row.
BOOST_AUTO_TEST_CASE(cross_entropy_gradient_at_a_minus_infinite_target_logit) {
    const double inf = std::numeric_limits<double>::infinity();
    for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
        sg::tape t(dt);
        auto logits = t.input(A{{0.0, -inf, std::log(3.0)}, {0.0, 0.0, std::log(2.0)}}, true);
        const int targets[] = {1, 2};
        const sg::expr loss = sg::cross_entropy(logits, targets, sg::reduction::none);
        const A v = t.value(loss);
        BOOST_TEST(v(0) == inf);
        BOOST_TEST(v(1) == std::log(2.0), boost::test_tools::tolerance(1e-6));
        t.backward(sg::sum(loss));
        expect_near(t.grad(logits), A{{0.25, -1.0, 0.75}, {0.25, 0.25, -0.5}}, 1e-6);
    }
}

BOOST_AUTO_TEST_SUITE_END()
