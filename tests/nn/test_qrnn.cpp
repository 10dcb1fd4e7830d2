// A quasi-recurrent network (Bradbury et al. 2017) written as user code on conv1d_causal and a
// few elementwise ops, trained on the adding problem (Hochreiter & Schmidhuber 1997) at T = 100:
// the target is the sum of the two values marked in a sequence of 100, the baseline of always
// answering 1 has an MSE of about 0.167, and the network must reach an MSE below 0.01.
//
// The QRNN layer: gates for all steps at once from one causal convolution over time (width 2),
//     [z i f o] = conv1d_causal(x, W) + b,  z = tanh, i, f, o = sigmoid,
// then ifo-pooling, the only sequential part:  c_t = f_t * c_{t-1} + i_t * z_t,  h_t = o_t * c_t.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

constexpr std::size_t T = 100;

struct adding_batch {
    A x;  // [T, B, 2]: value, marker
    A y;  // [B, 1]
};

adding_batch make_batch(std::size_t B, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<std::size_t> first(0, T / 2 - 1), second(T / 2, T - 1);
    adding_batch b{xt::zeros<double>({T, B, std::size_t(2)}), xt::zeros<double>({B, std::size_t(1)})};
    for (std::size_t r = 0; r < B; ++r) {
        for (std::size_t t = 0; t < T; ++t) b.x(t, r, 0) = u(rng);
        const std::size_t p = first(rng), q = second(rng);
        b.x(p, r, 1) = b.x(q, r, 1) = 1;
        b.y(r, 0) = b.x(p, r, 0) + b.x(q, r, 0);
    }
    return b;
}

struct qrnn {
    std::size_t hidden;
    sg::parameter w, b;  // [2, C_in, 4H], [4H]
    nn::linear out;

    qrnn(sg::parameter_store& ps, std::size_t in, std::size_t h, std::mt19937_64& rng)
        : hidden(h), out(sg::parameter_scope(ps, "out"), h, 1, true, rng) {
        w = ps.add("qrnn.w", sg::shape{2, in, 4 * h});
        b = ps.add("qrnn.b", sg::shape{4 * h});
        const double a = std::sqrt(6.0 / static_cast<double>(2 * in + 4 * h));  // Glorot over both taps
        nn::uniform(w, -a, a, rng);
        A bias = xt::zeros<double>({4 * h});
        for (std::size_t k = 2 * h; k < 3 * h; ++k) bias(k) = 3.0;  // f starts near 1: remember by default
        b.assign(bias);
    }

    sg::expr operator()(sg::tape& t, const A& x) const {
        const std::size_t B = x.shape()[1];
        const sg::expr gates = sg::conv1d_causal(t.input(x), t.param(w)) + t.param(b);  // [T, B, 4H]
        const std::vector<sg::expr> g = sg::split(gates, 4, -1);
        const sg::expr iz = sg::sigmoid(g[1]) * sg::tanh(g[0]), f = sg::sigmoid(g[2]);
        sg::expr c = t.constant(0.0, {1, B, hidden});
        for (std::size_t k = 0; k < T; ++k) c = sg::slice(f, 0, k, k + 1) * c + sg::slice(iz, 0, k, k + 1);
        const sg::expr h = sg::sigmoid(sg::slice(g[3], 0, T - 1, T)) * c;  // the last step's output
        return sg::matmul_add(out.bias, sg::reshape(h, {B, hidden}), sg::T(out.weight));
    }
};

double mse(sg::tape& t, const sg::expr& pred, const A& y) { return t.item(sg::mean(sg::square(pred - t.input(y)))); }

}  // namespace

BOOST_AUTO_TEST_SUITE(qrnn_user_code)

// About 1000 steps of 100 time steps: tens of seconds on a loaded machine, so labelled slow.
BOOST_AUTO_TEST_CASE(qrnn_learns_the_adding_problem_at_T_100, *boost::unit_test::label("slow")) {
    std::mt19937_64 rng(2017);
    sg::parameter_store ps;  // float32, as a user would train
    const qrnn model(ps, 2, 16, rng);
    sg::optim::adam opt(ps, 1e-2);
    const adding_batch test = make_batch(256, rng);
    double test_mse = 1;
    std::size_t step = 0;
    for (; step < 1500 && test_mse >= 0.005; ++step) {
        const adding_batch b = make_batch(32, rng);
        sg::tape t;
        const sg::expr loss = sg::mean(sg::square(model(t, b.x) - t.input(b.y)));
        t.backward(loss);
        opt.step();
        if (step % 100 == 99) {
            sg::tape e;
            test_mse = mse(e, model(e, test.x), test.y);
        }
    }
    BOOST_TEST_MESSAGE("QRNN adding problem T = 100: held-out MSE " << test_mse << " after " << step << " steps");
    BOOST_TEST(test_mse < 0.01);
}

BOOST_AUTO_TEST_SUITE_END()
