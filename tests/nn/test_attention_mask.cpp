// Masked attention with huge scores at masked positions: the mask excludes them from the softmax's
// max and sum (before: -1e9 was added and the result multiplied by the mask, so a masked score
// 1e10 above a valid one gave weights [0, 0] and a zero context).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <vector>

#include <seqgrad/nn/attention.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

BOOST_AUTO_TEST_SUITE(attention_mask)

BOOST_AUTO_TEST_CASE(masked_softmax_values_ignore_masked_scores) {
    for (auto dt : {sg::dtype::f32, sg::dtype::f64}) {
        sg::tape t(dt);
        // Batch entry 0: length 2 (the huge 1e30 is masked); entry 1: length 3; entry 2: length 0.
        auto x = t.input(xt::xarray<double>{{1.0, 2.0, 1e30}, {0.0, 0.0, 0.0}, {5.0, 6.0, 7.0}});
        const int lengths[] = {2, 3, 0};
        const auto y = t.value(sg::masked_softmax(x, lengths));
        const double e = std::exp(-1.0);
        BOOST_TEST(std::abs(y(0, 0) - e / (1 + e)) < 1e-6);
        BOOST_TEST(std::abs(y(0, 1) - 1 / (1 + e)) < 1e-6);
        BOOST_TEST(y(0, 2) == 0.0);
        for (int j = 0; j < 3; ++j) BOOST_TEST(std::abs(y(1, j) - 1.0 / 3) < 1e-6);
        for (int j = 0; j < 3; ++j) BOOST_TEST(y(2, j) == 0.0);
    }
}

BOOST_AUTO_TEST_CASE(masked_softmax_rejects_bad_lengths) {
    sg::tape t;
    auto x = t.constant(0.0, {2, 3});
    const int too_few[] = {1};
    const int too_long[] = {1, 4};
    const int negative[] = {-1, 1};
    BOOST_CHECK_THROW(sg::masked_softmax(x, too_few), sg::shape_error);
    BOOST_CHECK_THROW(sg::masked_softmax(x, too_long), sg::shape_error);
    BOOST_CHECK_THROW(sg::masked_softmax(x, negative), sg::shape_error);
    BOOST_CHECK_THROW(sg::masked_softmax(t.constant(0.0, {3}), too_few), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(masked_softmax_of_an_empty_batch_is_empty) {
    // B = 0 (no lengths) divided by zero in the forward kernel: SIGFPE, not a [0, 3] result.
    for (auto dt : {sg::dtype::f32, sg::dtype::f64}) {
        sg::tape t(dt);
        const sg::expr x = t.input(xt::xarray<double>(xt::zeros<double>({0, 3})), true);
        const sg::expr y = sg::masked_softmax(x, std::span<const int>());
        BOOST_TEST(y.shape() == (sg::shape{0, 3}));
        BOOST_TEST(t.value(y).size() == 0u);
        t.backward(y, xt::xarray<double>(xt::zeros<double>({0, 3})));
        BOOST_TEST(t.grad(x).size() == 0u);
        const int lengths[] = {2, 0};  // and a [2, 0, 3]: no rows either
        BOOST_TEST(
            t.value(sg::masked_softmax(t.input(xt::xarray<double>(xt::zeros<double>({2, 0, 3}))), lengths)).size() ==
            0u);
    }
}

BOOST_AUTO_TEST_CASE(a_masked_score_far_above_the_valid_one_changes_nothing) {
    // dot attention, one row, S = 2, length 1: the valid position scores 0.5, the masked one 1e10.
    sg::parameter_store ps(sg::dtype::f64);
    nn::attention att(sg::parameter_scope(ps, "att"), nn::attention_score::dot, 2, 2);
    sg::tape t(sg::dtype::f64);
    auto memory = t.input(xt::xarray<double>{{{0.5, 3.0}, {1e10, -4.0}}}, true);  // [1, 2, 2]
    auto q = t.input(xt::xarray<double>{{1.0, 0.0}}, true);                       // [1, 2]
    const std::vector<std::size_t> lengths = {1};
    const auto o = att(att.prepare(memory, lengths), q);
    const auto w = t.value(o.weights);
    BOOST_TEST(w(0, 0) == 1.0);
    BOOST_TEST(w(0, 1) == 0.0);
    const auto c = t.value(o.context);
    BOOST_TEST(c(0, 0) == 0.5);
    BOOST_TEST(c(0, 1) == 3.0);
    // The gradient never reaches the masked position's memory.
    t.backward(sg::sum(o.context));
    const auto gm = t.grad(memory);
    BOOST_TEST(gm(0, 1, 0) == 0.0);
    BOOST_TEST(gm(0, 1, 1) == 0.0);
    BOOST_TEST(gm(0, 0, 0) == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
