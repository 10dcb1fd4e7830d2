#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "optim/optim.hpp"
#include "optim_helpers.hpp"

namespace sg = seqgrad;
namespace so = seqgrad::optim;
using seqgrad_test::set_grad;
using seqgrad_test::throws_value_error;

BOOST_AUTO_TEST_SUITE(schedule)

// lr0 1, step_size 3, gamma 0.5: 1 for steps 0-2, 0.5 for 3-5, 0.25 for 6-8 (as StepLR).
BOOST_AUTO_TEST_CASE(step_decay_values) {
    so::step_decay s(1.0, 3, 0.5);
    const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
    for (std::size_t t = 0; t < 10; ++t) BOOST_TEST(s(t) == want[t], "step " << t);
    so::step_decay s2(0.1, 10, 0.1);
    BOOST_TEST(std::abs(s2(25) - 0.001) <= 1e-15);  // 0.1 * 0.1^2
}

// lr0 0.2, gamma 0.5: 0.2, 0.1, 0.05, 0.025; step 10: 0.2/1024 = 1.953125e-4.
BOOST_AUTO_TEST_CASE(exponential_decay_values) {
    so::exponential_decay s(0.2, 0.5);
    BOOST_TEST(s(0) == 0.2);
    BOOST_TEST(s(1) == 0.1);
    BOOST_TEST(s(2) == 0.05);
    BOOST_TEST(s(3) == 0.025);
    BOOST_TEST(std::abs(s(10) - 1.953125e-4) <= 1e-15);
}

// sgd with lr = 0.1 * 0.5^t and a constant gradient (1, 1): w = 1 - 0.1 - 0.05 - 0.025 = 0.825.
BOOST_AUTO_TEST_CASE(apply_to_optimizer) {
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{1.0, 1.0});
    so::sgd opt(ps, 1.0);
    so::exponential_decay s(0.1, 0.5);
    double lrs[3];
    for (int t = 0; t < 3; ++t) {
        set_grad(w, {1.0, 1.0});
        lrs[t] = so::apply_schedule(opt, s);
        opt.step();
    }
    BOOST_TEST(lrs[0] == 0.1);
    BOOST_TEST(lrs[2] == 0.025);
    BOOST_TEST(std::abs(w.value_as_double()(0) - 0.825) <= 1e-12);
    BOOST_TEST(so::apply_schedule(opt, so::step_decay(1.0, 2, 0.1), 5) == 1.0 * 0.1 * 0.1);
    BOOST_TEST(opt.learning_rate() == 0.1 * 0.1);
    // Any callable is a schedule; a negative rate from it is refused by the optimiser.
    BOOST_TEST(throws_value_error([&] { so::apply_schedule(opt, [](std::size_t) { return -1.0; }); }, {"sgd"}));
}

BOOST_AUTO_TEST_CASE(bad_hyper_parameters) {
    BOOST_TEST(throws_value_error([] { so::step_decay(-1.0, 3, 0.5); }, {"step_decay"}));
    BOOST_TEST(throws_value_error([] { so::step_decay(1.0, 0, 0.5); }, {"step_decay", "step_size"}));
    BOOST_TEST(throws_value_error([] { so::step_decay(1.0, 3, 0.0); }, {"step_decay", "gamma"}));
    BOOST_TEST(throws_value_error([] { so::exponential_decay(1.0, -0.5); }, {"exponential_decay", "gamma"}));
    BOOST_TEST(throws_value_error([] { so::exponential_decay(std::nan(""), 0.5); }, {"exponential_decay"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(clip)

// grads (3, 4), max 1: norm 5, scale 1/(5 + 1e-6), grads (0.6, 0.8) within 1.2e-7.
BOOST_AUTO_TEST_CASE(global_norm_hand_case) {
    for (auto dt : {sg::dtype::f64, sg::dtype::f32}) {
        sg::parameter_store ps(dt);
        auto w = ps.add("w", sg::shape{2});
        set_grad(w, {3.0, 4.0});
        BOOST_TEST(so::clip_global_norm(ps, 1.0) == 5.0);
        BOOST_TEST(std::abs(w.grad_as_double()(0) - 0.6) <= 1e-6);
        BOOST_TEST(std::abs(w.grad_as_double()(1) - 0.8) <= 1e-6);
        if (dt == sg::dtype::f64) BOOST_TEST(w.grad<double>()(0) == 3.0 * (1.0 / (5.0 + 1e-6)));  // the 1e-6 is there
    }
}

// Norm over several parameters, frozen ones left out: a = (1, 2), b = [[2, 0], [0, 4]], frozen c = 100:
// norm = sqrt(1 + 4 + 4 + 16) = 5; max 2.5 halves a and b (to 1e-6) and leaves c alone.
BOOST_AUTO_TEST_CASE(global_norm_several_parameters) {
    sg::parameter_store ps(sg::dtype::f64);
    auto a = ps.add("a", sg::shape{2});
    auto b = ps.add("b", sg::shape{2, 2});
    auto c = ps.add("c", sg::shape{1});
    c.set_trainable(false);
    set_grad(a, {1.0, 2.0});
    set_grad(b, {{2.0, 0.0}, {0.0, 4.0}});
    set_grad(c, {100.0});
    BOOST_TEST(std::abs(so::clip_global_norm(ps, 2.5) - 5.0) <= 1e-12);
    BOOST_TEST(xt::allclose(a.grad_as_double(), xt::xarray<double>{0.5, 1.0}, 0.0, 1e-6));
    BOOST_TEST(xt::allclose(b.grad_as_double(), xt::xarray<double>{{1.0, 0.0}, {0.0, 2.0}}, 0.0, 1e-6));
    BOOST_TEST(c.grad_as_double()(0) == 100.0);
}

// Buffers longer than the norm's 32 partial sums (detail::lane_sum), with a tail: gradients 1, 2,
// ..., n have squares summing to n (n + 1) (2n + 1) / 6, exact in double (87 = 2 * 32 + 23, 33).
BOOST_AUTO_TEST_CASE(global_norm_long_buffers) {
    for (auto dt : {sg::dtype::f64, sg::dtype::f32}) {
        sg::parameter_store ps(dt);
        double expect = 0;
        for (const std::size_t n : {87u, 33u}) {
            auto w = ps.add("w" + std::to_string(n), sg::shape{n});
            set_grad(w, xt::arange<double>(1.0, double(n) + 1.0));
            expect += double(n) * double(n + 1) * double(2 * n + 1) / 6.0;
        }
        BOOST_TEST(so::clip_global_norm(ps, 1e9) == std::sqrt(expect));
    }
}

// Below or at the threshold nothing changes, bit for bit; a non-finite norm leaves grads alone.
BOOST_AUTO_TEST_CASE(global_norm_no_op) {
    sg::parameter_store ps(sg::dtype::f32);
    auto w = ps.add("w", sg::shape{2});
    set_grad(w, {0.3, 0.4});
    const xt::xarray<float> before = w.grad<float>();
    BOOST_TEST(std::abs(so::clip_global_norm(ps, 1.0) - 0.5) <= 1e-7);
    BOOST_TEST(w.grad<float>() == before);
    set_grad(w, {3.0, 4.0});
    BOOST_TEST(so::clip_global_norm(ps, 5.0) == 5.0);
    BOOST_TEST(w.grad_as_double() == (xt::xarray<double>{3.0, 4.0}));
    BOOST_TEST(so::clip_global_norm(ps, std::numeric_limits<double>::infinity()) == 5.0);
    set_grad(w, {std::numeric_limits<double>::infinity(), 1.0});
    BOOST_TEST(std::isinf(so::clip_global_norm(ps, 1.0)));
    BOOST_TEST(w.grad_as_double()(1) == 1.0);
}

// A store large enough for the norm and the scaling to split across threads: the same bits on
// 1 and 2 threads, and the norm equals the sum of squares taken here in double.
BOOST_AUTO_TEST_CASE(global_norm_large_store_same_on_one_and_two_threads) {
    std::vector<xt::xarray<float>> grads[2];
    double norms[2] = {};
    double want = 0;
    const std::size_t threads_before = sg::num_threads();
    for (int threads : {1, 2}) {
        sg::set_num_threads(static_cast<std::size_t>(threads));
        sg::parameter_store ps(sg::dtype::f32);
        std::vector<sg::parameter> w = {ps.add("a", sg::shape{1100000}), ps.add("b", sg::shape{300, 100})};
        want = 0;
        for (std::size_t k = 0; k < w.size(); ++k) {
            auto& g = w[k].grad<float>();
            for (std::size_t i = 0; i < g.size(); ++i) {
                g.data()[i] = static_cast<float>(std::sin(0.01 * double(i) + double(k)));
                want += double(g.data()[i]) * double(g.data()[i]);
            }
        }
        norms[threads - 1] = so::clip_global_norm(ps, 1.0);
        for (auto& p : w) grads[threads - 1].push_back(p.grad<float>());
    }
    sg::set_num_threads(threads_before);
    BOOST_TEST(norms[0] == norms[1]);
    BOOST_TEST(std::abs(norms[0] - std::sqrt(want)) <= 1e-9 * std::sqrt(want));
    for (std::size_t k = 0; k < 2; ++k) BOOST_TEST(xt::all(xt::equal(grads[0][k], grads[1][k])));
    // Scaled to norm 1: the first entry of b is sin(1) / norm.
    BOOST_TEST(std::abs(grads[1][1].data()[0] - std::sin(1.0) / norms[0]) <= 1e-6);
}

BOOST_AUTO_TEST_CASE(value) {
    for (auto dt : {sg::dtype::f64, sg::dtype::f32}) {
        sg::parameter_store ps(dt);
        auto w = ps.add("w", sg::shape{2, 2});
        auto frozen = ps.add("frozen", sg::shape{1});
        frozen.set_trainable(false);
        set_grad(w, {{-3.0, 0.5}, {2.0, -0.25}});
        set_grad(frozen, {7.0});
        so::clip_value(ps, 1.0);
        BOOST_TEST(w.grad_as_double() == (xt::xarray<double>{{-1.0, 0.5}, {1.0, -0.25}}));
        BOOST_TEST(frozen.grad_as_double()(0) == 7.0);
    }
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
    sg::parameter_store ps(sg::dtype::f64);
    BOOST_TEST(throws_value_error([&] { so::clip_global_norm(ps, -1.0); }, {"clip_global_norm", "-1"}));
    BOOST_TEST(throws_value_error([&] { so::clip_global_norm(ps, std::nan("")); }, {"clip_global_norm"}));
    BOOST_TEST(throws_value_error([&] { so::clip_value(ps, -0.5); }, {"clip_value", "-0.5"}));
}

BOOST_AUTO_TEST_SUITE_END()
