// The single-step RNN cell of the classic course notes, column convention (examples are columns):
//   a<t> = tanh(Wax x<t> + Waa a<t-1> + ba),  y<t> = softmax(Wya a<t> + by)
// Its gradients from the tape must equal the closed-form ones to 1e-10 in double:
//   dtanh = da_next * (1 - a<t>^2)
//   dWax = dtanh x<t>^T, dWaa = dtanh a<t-1>^T, dba = sum over the batch of dtanh,
//   dx<t> = Wax^T dtanh, da_prev = Waa^T dtanh.
#include <boost/test/unit_test.hpp>

#include <random>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xrandom.hpp>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
using A = xt::xarray<double>;

BOOST_AUTO_TEST_SUITE(rnn_closed_form)

BOOST_AUTO_TEST_CASE(single_step_gradients_equal_the_closed_form) {
    const std::size_t n_x = 3, n_a = 5, n_y = 2, m = 10;
    xt::random::seed(1);
    sg::parameter_store weights(sg::dtype::f64), inputs(sg::dtype::f64);
    auto Wax = weights.add("Wax", A(xt::random::randn<double>({n_a, n_x})));
    auto Waa = weights.add("Waa", A(xt::random::randn<double>({n_a, n_a})));
    auto ba = weights.add("ba", A(xt::random::randn<double>({n_a, std::size_t(1)})));
    auto Wya = weights.add("Wya", A(xt::random::randn<double>({n_y, n_a})));
    auto by = weights.add("by", A(xt::random::randn<double>({n_y, std::size_t(1)})));
    auto xt_ = inputs.add("x", A(xt::random::randn<double>({n_x, m})));
    auto a_prev = inputs.add("a_prev", A(xt::random::randn<double>({n_a, m})));
    const A da_next = xt::random::randn<double>({n_a, m});

    sg::tape t(sg::dtype::f64);
    auto a = sg::tanh(sg::matmul(t.param(Wax), t.param(xt_)) + sg::matmul(t.param(Waa), t.param(a_prev)) + t.param(ba));
    // softmax runs over the last axis, so the [n_y, m] logits are transposed to [m, n_y].
    auto y = sg::softmax(sg::transpose(sg::matmul(t.param(Wya), a) + t.param(by)));
    t.backward(a, da_next);

    const A a_val = t.value(a);
    const A z = xt::linalg::dot(Wax.value<double>(), xt_.value<double>()) +
                xt::linalg::dot(Waa.value<double>(), a_prev.value<double>()) + ba.value<double>();
    BOOST_TEST(xt::amax(xt::abs(a_val - xt::tanh(z)))() < 1e-12);
    const A logits = xt::linalg::dot(Wya.value<double>(), a_val) + by.value<double>();
    const A e = xt::exp(logits - xt::amax(logits, {0}));
    const A y_ref = e / xt::sum(e, {0});
    BOOST_TEST(xt::amax(xt::abs(t.value(y) - xt::transpose(y_ref)))() < 1e-12);

    const A dtanh = da_next * (1.0 - a_val * a_val);
    const A dWax = xt::linalg::dot(dtanh, xt::transpose(xt_.value<double>()));
    const A dWaa = xt::linalg::dot(dtanh, xt::transpose(a_prev.value<double>()));
    const A dba = xt::sum(dtanh, {1}, xt::keep_dims);
    const A dx = xt::linalg::dot(xt::transpose(Wax.value<double>()), dtanh);
    const A da_prev = xt::linalg::dot(xt::transpose(Waa.value<double>()), dtanh);

    auto close = [](const A& got, const A& want) { return xt::amax(xt::abs(got - want))() < 1e-10; };
    BOOST_TEST(close(Wax.grad<double>(), dWax));
    BOOST_TEST(close(Waa.grad<double>(), dWaa));
    BOOST_TEST(close(ba.grad<double>(), dba));
    BOOST_TEST(close(xt_.grad<double>(), dx));
    BOOST_TEST(close(a_prev.grad<double>(), da_prev));
    // The softmax head was not on the path from a: its weights got no gradient.
    BOOST_TEST(xt::amax(xt::abs(Wya.grad<double>()))() == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
