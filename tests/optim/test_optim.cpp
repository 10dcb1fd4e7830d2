#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "optim/optim.hpp"
#include "optim_helpers.hpp"

namespace sg = seqgrad;
namespace so = seqgrad::optim;
using seqgrad_test::set_grad;
using seqgrad_test::throws_value_error;

namespace {

using factory = std::function<std::unique_ptr<so::optimizer>(sg::parameter_store&)>;

template <class O, class Opt>
factory make(Opt o) {
    return [o](sg::parameter_store& ps) { return std::make_unique<O>(ps, o); };
}

// The hand case shared by every optimiser: w = (1, -2), one step with g1 = (0.5, -1), one with
// g2 = (0.1, 0.2). Returns w afterwards.
xt::xarray<double> two_steps(sg::dtype dt, const factory& f) {
    sg::parameter_store ps(dt);
    auto w = ps.add("w", xt::xarray<double>{1.0, -2.0});
    auto opt = f(ps);
    set_grad(w, {0.5, -1.0});
    opt->step();
    set_grad(w, {0.1, 0.2});
    opt->step();
    return w.value_as_double();
}

// Double store within 1e-6 of the hand numbers, float store within 1e-5 of the double store.
void check_two_steps(const factory& f, double w0, double w1) {
    const auto d = two_steps(sg::dtype::f64, f);
    const auto s = two_steps(sg::dtype::f32, f);
    const double want[2] = {w0, w1};
    for (std::size_t i = 0; i < 2; ++i) {
        BOOST_TEST(std::abs(d(i) - want[i]) <= 1e-6, "w[" << i << "] = " << d(i) << ", hand value " << want[i]);
        BOOST_TEST(std::abs(s(i) - d(i)) <= 1e-5, "float w[" << i << "] = " << s(i) << ", double " << d(i));
    }
}

// One of each optimiser, with the options that keep the most state.
std::vector<std::pair<std::string, factory>> all_optimizers() {
    return {{"sgd", make<so::sgd>(so::sgd_options{.lr = 0.1, .momentum = 0.9, .nesterov = true})},
            {"adam", make<so::adam>(so::adam_options{.lr = 0.1, .weight_decay = 0.01})},
            {"adagrad", make<so::adagrad>(so::adagrad_options{.lr = 0.1, .initial_accumulator_value = 0.1})},
            {"rmsprop", make<so::rmsprop>(so::rmsprop_options{.lr = 0.01, .momentum = 0.9, .centered = true})}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sgd)

// lr 0.1: w1 = (1 - 0.1*0.5, -2 + 0.1*1) = (0.95, -1.9); w2 = (0.95 - 0.01, -1.9 - 0.02).
BOOST_AUTO_TEST_CASE(plain) { check_two_steps(make<so::sgd>(so::sgd_options{.lr = 0.1}), 0.94, -1.92); }

// mu 0.9: b1 = g1 = (0.5, -1), w1 = (0.95, -1.9); b2 = 0.9*b1 + g2 = (0.55, -0.7),
// w2 = (0.95 - 0.055, -1.9 + 0.07) = (0.895, -1.83).
BOOST_AUTO_TEST_CASE(momentum) {
    check_two_steps(make<so::sgd>(so::sgd_options{.lr = 0.1, .momentum = 0.9}), 0.895, -1.83);
}

// b1 = (0.5, -1), d1 = g1 + 0.9*b1 = (0.95, -1.9), w1 = (0.905, -1.81);
// b2 = (0.55, -0.7), d2 = g2 + 0.9*b2 = (0.595, -0.43), w2 = (0.905 - 0.0595, -1.81 + 0.043).
BOOST_AUTO_TEST_CASE(nesterov) {
    check_two_steps(make<so::sgd>(so::sgd_options{.lr = 0.1, .momentum = 0.9, .nesterov = true}), 0.8455, -1.767);
}

// wd 0.1: d1 = g1 + 0.1*(1, -2) = (0.6, -1.2), w1 = (0.94, -1.88);
// d2 = g2 + 0.1*w1 = (0.194, 0.012), w2 = (0.94 - 0.0194, -1.88 - 0.0012) = (0.9206, -1.8812).
BOOST_AUTO_TEST_CASE(weight_decay) {
    check_two_steps(make<so::sgd>(so::sgd_options{.lr = 0.1, .weight_decay = 0.1}), 0.9206, -1.8812);
}

// mu 0.9, dampening 0.5, wd 0.1: d1 = (0.6, -1.2), b1 = d1 (no dampening on the first step),
// w1 = (0.94, -1.88); d2 = (0.194, 0.012), b2 = 0.9*b1 + 0.5*d2 = (0.637, -1.074),
// w2 = (0.94 - 0.0637, -1.88 + 0.1074) = (0.8763, -1.7726).
BOOST_AUTO_TEST_CASE(momentum_dampening_weight_decay) {
    check_two_steps(make<so::sgd>(so::sgd_options{.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1}),
                    0.8763, -1.7726);
}

BOOST_AUTO_TEST_CASE(bad_hyper_parameters) {
    sg::parameter_store ps(sg::dtype::f64);
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, -0.1); }, {"sgd", "learning rate", "-0.1"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, std::nan("")); }, {"sgd"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .momentum = -0.5}); }, {"sgd", "momentum", "-0.5"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .dampening = 1.5}); }, {"dampening", "1.5"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .weight_decay = -1}); }, {"weight_decay"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .nesterov = true}); }, {"nesterov"}));
    BOOST_TEST(
        throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
                           {"nesterov"}));
    so::sgd opt(ps, 0.1);
    BOOST_TEST(throws_value_error([&] { opt.set_learning_rate(-1); }, {"sgd", "-1"}));
    BOOST_TEST(opt.learning_rate() == 0.1);
    opt.set_learning_rate(0.5);
    BOOST_TEST(opt.options().lr == 0.5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(adam)

// lr 0.1, betas (0.9, 0.999), eps 1e-8.
// t=1: m = 0.1*g1 = (0.05, -0.1), v = 0.001*g1^2 = (0.00025, 0.001); m/(1-0.9) = g1,
//      sqrt(v/(1-0.999)) = |g1|, so w1 = w0 - 0.1*sign(g1) = (0.9, -1.9) (eps moves it by 2e-9).
// t=2: m = 0.9*m + 0.1*g2 = (0.055, -0.07), v = 0.999*v + 0.001*g2^2 = (0.00025975, 0.001039);
//      1-0.9^2 = 0.19, 1-0.999^2 = 0.001999; m/0.19 = (0.28947368, -0.36842105),
//      sqrt(v/0.001999) = (0.36047187, 0.72094374); w2 = w1 - 0.1*(0.28947368/0.36047187,
//      -0.36842105/0.72094374) = (0.9 - 0.08030410, -1.9 + 0.05110261) = (0.81969590, -1.84889739).
BOOST_AUTO_TEST_CASE(defaults) {
    check_two_steps(make<so::adam>(so::adam_options{.lr = 0.1}), 0.8196959064, -1.8488973940);
}

// betas (0.5, 0.75), eps 0.1.
// t=1: m = 0.5*g1 = (0.25, -0.5), v = 0.25*g1^2 = (0.0625, 0.25); m/0.5 = (0.5, -1),
//      sqrt(v/0.25) = (0.5, 1); w1 = (1 - 0.1*0.5/0.6, -2 + 0.1*1/1.1) = (0.91666667, -1.90909091).
// t=2: m = 0.5*m + 0.5*g2 = (0.175, -0.15), v = 0.75*v + 0.25*g2^2 = (0.049375, 0.1975);
//      m/0.75 = (0.23333333, -0.2), v/0.4375 = (0.11285714, 0.45142857), sqrt = (0.33594217,
//      0.67188434); w2 = (0.91666667 - 0.1*0.23333333/0.43594217, -1.90909091 + 0.1*0.2/0.77188434)
//      = (0.86314275, -1.88318029).
BOOST_AUTO_TEST_CASE(betas_and_eps) {
    check_two_steps(make<so::adam>(so::adam_options{.lr = 0.1, .beta1 = 0.5, .beta2 = 0.75, .eps = 0.1}), 0.8631427480,
                    -1.8831802916);
}

// wd 0.1: d1 = g1 + 0.1*(1, -2) = (0.6, -1.2); as in `defaults`, w1 = w0 - 0.1*sign(d1) = (0.9, -1.9).
// d2 = g2 + 0.1*w1 = (0.19, 0.01); m = 0.9*0.1*d1 + 0.1*d2 = (0.073, -0.107);
// v = 0.999*0.001*d1^2 + 0.001*d2^2 = (0.00039574, 0.00143866); v/0.001999 = (0.19796898, 0.71968984);
// w2 = (0.9 - 0.1*(0.073/0.19)/0.44493705, -1.9 + 0.1*(0.107/0.19)/0.84834536) = (0.81364835, -1.83361691).
BOOST_AUTO_TEST_CASE(weight_decay) {
    check_two_steps(make<so::adam>(so::adam_options{.lr = 0.1, .weight_decay = 0.1}), 0.8136483454, -1.8336169077);
}

BOOST_AUTO_TEST_CASE(bad_hyper_parameters) {
    sg::parameter_store ps(sg::dtype::f64);
    BOOST_TEST(throws_value_error([&] { so::adam(ps, -1e-3); }, {"adam", "learning rate", "-0.001"}));
    BOOST_TEST(throws_value_error([&] { so::adam(ps, {.beta1 = 1.0}); }, {"adam", "beta1", "1"}));
    BOOST_TEST(throws_value_error([&] { so::adam(ps, {.beta1 = -0.1}); }, {"adam", "beta1", "-0.1"}));
    BOOST_TEST(throws_value_error([&] { so::adam(ps, {.beta2 = 1.5}); }, {"adam", "beta2", "1.5"}));
    BOOST_TEST(throws_value_error([&] { so::adam(ps, {.eps = -1e-8}); }, {"adam", "eps"}));
    BOOST_TEST(throws_value_error([&] { so::adam(ps, {.weight_decay = -0.1}); }, {"adam", "weight_decay"}));
    BOOST_TEST(so::adam(ps, {.beta1 = 0.0, .beta2 = 0.0}).options().beta2 == 0.0);  // 0 is allowed
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(adagrad)

// lr 0.1, eps 1e-10: s1 = g1^2 = (0.25, 1), w1 = w0 - 0.1*sign(g1) = (0.9, -1.9);
// s2 = (0.26, 1.04), w2 = (0.9 - 0.1*0.1/0.50990195, -1.9 - 0.1*0.2/1.01980390)
// = (0.9 - 0.01961161, -1.9 - 0.01961161) = (0.88038839, -1.91961161).
BOOST_AUTO_TEST_CASE(defaults) {
    check_two_steps(make<so::adagrad>(so::adagrad_options{.lr = 0.1}), 0.8803883865, -1.9196116135);
}

// initial 0.75, lr_decay 0.5: s1 = 0.75 + g1^2 = (1, 1.75), w1 = (1 - 0.1*0.5/1, -2 + 0.1/1.32287566)
// = (0.95, -1.92440711); t=2: lr = 0.1/(1 + 0.5) = 0.06666667, s2 = (1.01, 1.79),
// w2 = (0.95 - 0.06666667*0.1/1.00498756, -1.92440711 - 0.06666667*0.2/1.33790882)
// = (0.94336642, -1.93437291).
BOOST_AUTO_TEST_CASE(initial_accumulator_and_lr_decay) {
    check_two_steps(make<so::adagrad>(
                        so::adagrad_options{.lr = 0.1, .lr_decay = 0.5, .initial_accumulator_value = 0.75}),
                    0.9433664187, -1.9343729066);
}

// wd 0.1: d1 = (0.6, -1.2), s1 = (0.36, 1.44), w1 = (0.9, -1.9); d2 = g2 + 0.1*w1 = (0.19, 0.01),
// s2 = (0.3961, 1.4401), w2 = (0.9 - 0.1*0.19/0.62936476, -1.9 - 0.1*0.01/1.20004167)
// = (0.86981083, -1.90083330).
BOOST_AUTO_TEST_CASE(weight_decay) {
    check_two_steps(make<so::adagrad>(so::adagrad_options{.lr = 0.1, .weight_decay = 0.1}), 0.8698108296,
                    -1.9008333044);
}

BOOST_AUTO_TEST_CASE(bad_hyper_parameters) {
    sg::parameter_store ps(sg::dtype::f64);
    BOOST_TEST(throws_value_error([&] { so::adagrad(ps, -0.01); }, {"adagrad", "learning rate"}));
    BOOST_TEST(throws_value_error([&] { so::adagrad(ps, {.lr_decay = -1}); }, {"adagrad", "lr_decay"}));
    BOOST_TEST(throws_value_error([&] { so::adagrad(ps, {.initial_accumulator_value = -0.5}); },
                                  {"adagrad", "initial_accumulator_value", "-0.5"}));
    BOOST_TEST(throws_value_error([&] { so::adagrad(ps, {.eps = -1}); }, {"adagrad", "eps"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rmsprop)

// lr 0.01, alpha 0.99, eps 1e-8: v1 = 0.01*g1^2 = (0.0025, 0.01), sqrt = (0.05, 0.1),
// w1 = (1 - 0.01*0.5/0.05, -2 + 0.01*1/0.1) = (0.9, -1.9); v2 = 0.99*v1 + 0.01*g2^2 = (0.002575, 0.0103),
// sqrt = (0.05074446, 0.10148892), g2/sqrt = (1.97065856, 1.97065856),
// w2 = (0.9 - 0.01970659, -1.9 - 0.01970659) = (0.88029341, -1.91970659) (eps moves it by 2e-8).
BOOST_AUTO_TEST_CASE(defaults) {
    check_two_steps(make<so::rmsprop>(so::rmsprop_options{.lr = 0.01}), 0.8802934383, -1.9197065936);
}

// momentum 0.9: b1 = g1/sqrt(v1) = (10, -10), w1 = (0.9, -1.9);
// b2 = 0.9*b1 + (1.97065856, 1.97065856) = (10.97065856, -7.02934144), w2 = w1 - 0.01*b2
// = (0.79029341, -1.82970659).
BOOST_AUTO_TEST_CASE(momentum) {
    check_two_steps(make<so::rmsprop>(so::rmsprop_options{.lr = 0.01, .momentum = 0.9}), 0.7902934563, -1.8297066026);
}

// centered: a1 = 0.01*g1 = (0.005, -0.01), v1 - a1^2 = (0.002475, 0.0099), sqrt = (0.04974937, 0.09949874),
// w1 = (1 - 0.005/0.04974937, -2 + 0.01/0.09949874) = (0.89949622, -1.89949622);
// v2 = (0.002575, 0.0103), a2 = 0.99*a1 + 0.01*g2 = (0.00595, -0.0079), v2 - a2^2 = (0.0025395975,
// 0.01023759), sqrt = (0.05039442, 0.10118098), w2 = (0.89949622 - 0.001/0.05039442,
// -1.89949622 - 0.002/0.10118098) = (0.87965275, -1.91926278).
BOOST_AUTO_TEST_CASE(centered) {
    check_two_steps(make<so::rmsprop>(so::rmsprop_options{.lr = 0.01, .centered = true}), 0.8796527756, -1.9192627882);
}

// alpha 0.5, momentum 0.5, centered, wd 0.1, lr 0.01:
// d1 = (0.6, -1.2), v1 = 0.5*d1^2 = (0.18, 0.72), a1 = 0.5*d1 = (0.3, -0.6), den1 = sqrt(v1 - a1^2) =
// (0.3, 0.6), b1 = d1/den1 = (2, -2), w1 = (0.98, -1.98);
// d2 = g2 + 0.1*w1 = (0.198, 0.002), v2 = 0.5*v1 + 0.5*d2^2 = (0.109602, 0.360002),
// a2 = 0.5*a1 + 0.5*d2 = (0.249, -0.299), den2 = sqrt(v2 - a2^2) = (0.21817654, 0.52019324),
// b2 = 0.5*b1 + d2/den2 = (1.90752190, -0.99615526), w2 = w1 - 0.01*b2 = (0.96092478, -1.97003845).
BOOST_AUTO_TEST_CASE(all_options) {
    check_two_steps(make<so::rmsprop>(so::rmsprop_options{
                        .lr = 0.01, .alpha = 0.5, .weight_decay = 0.1, .momentum = 0.5, .centered = true}),
                    0.9609247816, -1.9700384477);
}

BOOST_AUTO_TEST_CASE(bad_hyper_parameters) {
    sg::parameter_store ps(sg::dtype::f64);
    BOOST_TEST(throws_value_error([&] { so::rmsprop(ps, -0.01); }, {"rmsprop", "learning rate"}));
    BOOST_TEST(throws_value_error([&] { so::rmsprop(ps, {.alpha = 1.5}); }, {"rmsprop", "alpha", "1.5"}));
    BOOST_TEST(throws_value_error([&] { so::rmsprop(ps, {.alpha = -0.5}); }, {"rmsprop", "alpha"}));
    BOOST_TEST(throws_value_error([&] { so::rmsprop(ps, {.momentum = -0.9}); }, {"rmsprop", "momentum"}));
    BOOST_TEST(throws_value_error([&] { so::rmsprop(ps, {.eps = -1}); }, {"rmsprop", "eps"}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(optimizer_common)

// Options become the store's scalar type: an eps below float's smallest normal number became 0 in a
// float store (0/0 where a gradient stayed 0), a learning rate or weight decay beyond its range
// inf. Refused for any store (one may be converted with to() later).
BOOST_AUTO_TEST_CASE(options_outside_float_range_are_refused) {
    sg::parameter_store ps(sg::dtype::f32);
    for (const char* who : {"adam", "rmsprop", "adagrad"}) {
        const auto make_with_eps = [&](double eps) {
            if (std::string(who) == "adam") so::adam(ps, {.eps = eps});
            else if (std::string(who) == "rmsprop") so::rmsprop(ps, {.eps = eps});
            else so::adagrad(ps, {.eps = eps});
        };
        BOOST_TEST(throws_value_error([&] { make_with_eps(1e-50); },
                                      {who, "eps must be finite and > 0, from 1.2e-38", "got 1e-50"}));
        make_with_eps(1.2e-38);  // float's smallest normal number (rounded up) is fine
    }
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, 1e39); }, {"sgd", "learning rate", "at most 3.4e38", "1e+39"}));
    BOOST_TEST(throws_value_error([&] { so::sgd(ps, {.lr = 0.1, .weight_decay = 1e39}); }, {"sgd", "weight_decay"}));
    so::sgd s(ps, 0.1);
    BOOST_TEST(throws_value_error([&] { s.set_learning_rate(1e39); }, {"sgd", "learning rate"}));
    BOOST_TEST(s.learning_rate() == 0.1);
}

// Centered RMSprop under a constant gradient: v - a^2 is (1 - alpha^t) alpha^t g^2 in exact
// arithmetic, which rounds below 0 once alpha^t is under the rounding of v; its square root was
// NaN from step 54 (f64) as in PyTorch 1.13. Held at 0: every step finite.
BOOST_AUTO_TEST_CASE(centered_rmsprop_stays_finite_under_a_constant_gradient) {
    for (const auto dt : {sg::dtype::f64, sg::dtype::f32})
        for (const double alpha : {0.3, 0.5}) {
            sg::parameter_store ps(dt);
            const sg::parameter a = ps.add("a", sg::shape{3});
            so::rmsprop r(ps, so::rmsprop_options{.lr = 1e-3, .alpha = alpha, .centered = true});
            std::size_t first_bad = 0;
            for (std::size_t t = 1; t <= 80 && !first_bad; ++t) {
                set_grad(a, {0.7, 1.7, -0.3});
                r.step();
                const xt::xarray<double> v = a.value_as_double();
                if (!xt::all(xt::isfinite(v))) first_bad = t;
            }
            BOOST_TEST(first_bad == 0u, "alpha " << alpha << " first non-finite step " << first_bad);
        }
}

// Every optimiser: a frozen parameter keeps its value, gets no state, and its gradient is zeroed
// along with the others; a 2x2 parameter is updated entry by entry.
BOOST_AUTO_TEST_CASE(frozen_untouched_and_grads_zeroed) {
    for (auto& [name, f] : all_optimizers()) {
        BOOST_TEST_CONTEXT(name) {
            sg::parameter_store ps(sg::dtype::f64);
            auto w = ps.add("w", xt::xarray<double>{{1.0, -2.0}, {3.0, 0.5}});
            auto frozen = ps.add("frozen", xt::xarray<double>{4.0, 5.0});
            frozen.set_trainable(false);
            auto opt = f(ps);
            set_grad(w, {{0.5, -1.0}, {0.25, 0.0}});
            set_grad(frozen, {1.0, 1.0});
            opt->step();
            BOOST_TEST(frozen.value_as_double() == (xt::xarray<double>{4.0, 5.0}));
            BOOST_TEST(opt->state(1) == nullptr);
            BOOST_TEST(opt->state(0) != nullptr);
            BOOST_TEST(xt::all(xt::equal(w.grad_as_double(), 0.0)));
            BOOST_TEST(xt::all(xt::equal(frozen.grad_as_double(), 0.0)));
            const auto v = w.value_as_double();
            BOOST_TEST(v(0, 0) < 1.0);  // moved against the gradient
            BOOST_TEST(v(0, 1) > -2.0);
            BOOST_TEST(v(1, 0) < 3.0);
            BOOST_TEST(opt->steps() == 1u);
        }
    }
}

BOOST_AUTO_TEST_CASE(step_false_keeps_grads) {
    for (auto& [name, f] : all_optimizers()) {
        BOOST_TEST_CONTEXT(name) {
            sg::parameter_store ps(sg::dtype::f32);
            auto w = ps.add("w", xt::xarray<double>{1.0, -2.0});
            auto opt = f(ps);
            set_grad(w, {0.5, -1.0});
            opt->step(false);
            BOOST_TEST(w.grad_as_double() == (xt::xarray<double>{0.5, -1.0}));
            BOOST_TEST(w.value_as_double()(0) < 1.0);
        }
    }
}

// step() zeroes each gradient in the update's own pass (update_and_zero): three steps give the
// same bits as step(false) followed by zeroing by hand, in float and double.
BOOST_AUTO_TEST_CASE(fused_zeroing_same_bits_as_separate) {
    for (auto& [name, f] : all_optimizers()) {
        for (const sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
            BOOST_TEST_CONTEXT(name << (dt == sg::dtype::f32 ? " f32" : " f64")) {
                sg::parameter_store a(dt), b(dt);
                const xt::xarray<double> w0{{0.3, -1.7, 2.2}, {0.9, 0.0, -0.4}};
                auto wa = a.add("w", w0), wb = b.add("w", w0);
                auto oa = f(a), ob = f(b);
                for (int k = 0; k < 3; ++k) {
                    const xt::xarray<double> g = xt::xarray<double>{{0.5, -1.0, 0.25}, {2.0, -0.125, 0.75}} * (k + 1.0);
                    set_grad(wa, g);
                    set_grad(wb, g);
                    oa->step();
                    ob->step(false);
                    set_grad(wb, xt::zeros<double>(g.shape()));
                    BOOST_TEST(wa.value_as_double() == wb.value_as_double());
                    BOOST_TEST(xt::all(xt::equal(wa.grad_as_double(), 0.0)));
                }
            }
        }
    }
}

// A user's optimiser overrides update() only: step() still zeroes its gradients afterwards.
BOOST_AUTO_TEST_CASE(user_optimizer_gradients_zeroed) {
    struct halve : so::optimizer {
        explicit halve(sg::parameter_store& ps) : so::optimizer(ps, "halve", 0.5, 0) {}
        void update(const sg::parameter& p, sg::detail::optim_state&) override {
            p.value<double>() -= learning_rate() * p.grad<double>();
        }
    };
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{1.0, -2.0});
    halve opt(ps);
    set_grad(w, {0.5, -1.0});
    opt.step();
    BOOST_TEST(w.value_as_double() == (xt::xarray<double>{0.75, -1.5}));
    BOOST_TEST(w.grad_as_double() == (xt::xarray<double>{0.0, 0.0}));
    set_grad(w, {1.0, 1.0});
    opt.step(false);
    BOOST_TEST(w.value_as_double() == (xt::xarray<double>{0.25, -2.0}));
    BOOST_TEST(w.grad_as_double() == (xt::xarray<double>{1.0, 1.0}));
}

// After the first step the state buffers are not reallocated; a parameter added later gets state
// on the next step.
BOOST_AUTO_TEST_CASE(state_is_made_once_and_lazily) {
    for (auto& [name, f] : all_optimizers()) {
        BOOST_TEST_CONTEXT(name) {
            sg::parameter_store ps(sg::dtype::f32);
            auto w = ps.add("w", xt::xarray<double>{1.0, -2.0});
            auto opt = f(ps);
            BOOST_TEST(opt->state(0) == nullptr);
            set_grad(w, {0.5, -1.0});
            opt->step();
            const float* buf = opt->state(0)->f.data();
            auto u = ps.add("u", xt::xarray<double>{1.0});
            set_grad(w, {0.5, -1.0});
            set_grad(u, {1.0});
            opt->step();
            BOOST_TEST(opt->state(0)->f.data() == buf);
            BOOST_TEST(opt->state(0)->steps == 2u);
            BOOST_REQUIRE(opt->state(1) != nullptr);
            BOOST_TEST(opt->state(1)->steps == 1u);
            BOOST_TEST(u.value_as_double()(0) < 1.0);
        }
    }
}

// A store large enough for step() to split its parameters across threads: two steps give the
// same bits on 1 and 2 threads, every gradient is zeroed, a frozen parameter keeps its value, and
// sampled entries match the same optimiser run on a one-entry store (each update is elementwise).
BOOST_AUTO_TEST_CASE(large_store_same_on_one_and_two_threads) {
    const std::size_t sizes[3] = {700000, 400001, 3};  // 1.1M entries: split from 2^20
    auto grad_at = [](std::size_t k, std::size_t i, int step) {
        return std::sin(0.37 * double(i) + double(k) + 1.3 * step) * (1.0 + double(i % 7));
    };
    auto value_at = [](std::size_t k, std::size_t i) { return std::cos(0.11 * double(i) + double(k)); };
    const std::size_t threads_before = sg::num_threads();
    for (auto& [name, f] : all_optimizers()) {
        BOOST_TEST_CONTEXT(name) {
            std::vector<xt::xarray<float>> after[2];
            for (int threads : {1, 2}) {
                sg::set_num_threads(static_cast<std::size_t>(threads));
                sg::parameter_store ps(sg::dtype::f32);
                std::vector<sg::parameter> w;
                for (std::size_t k = 0; k < 3; ++k) {
                    xt::xarray<double> v = xt::zeros<double>({sizes[k]});
                    for (std::size_t i = 0; i < sizes[k]; ++i) v(i) = value_at(k, i);
                    w.push_back(ps.add("w" + std::to_string(k), v));
                }
                auto frozen = ps.add("frozen", xt::xarray<double>{4.0});
                frozen.set_trainable(false);
                auto opt = f(ps);
                for (int step = 0; step < 2; ++step) {
                    for (std::size_t k = 0; k < 3; ++k)
                        for (std::size_t i = 0; i < sizes[k]; ++i)
                            w[k].grad<float>()(i) = static_cast<float>(grad_at(k, i, step));
                    frozen.grad<float>()(0) = 1.0f;
                    opt->step();
                    for (std::size_t k = 0; k < 3; ++k) BOOST_TEST(xt::all(xt::equal(w[k].grad<float>(), 0.0f)));
                    BOOST_TEST(frozen.grad<float>()(0) == 0.0f);
                }
                BOOST_TEST(frozen.value<float>()(0) == 4.0f);
                for (std::size_t k = 0; k < 3; ++k) after[threads - 1].push_back(w[k].value<float>());
            }
            sg::set_num_threads(threads_before);
            for (std::size_t k = 0; k < 3; ++k) BOOST_TEST(xt::all(xt::equal(after[0][k], after[1][k])));
            for (std::size_t k = 0; k < 3; ++k)
                for (std::size_t i : {std::size_t(0), std::size_t(12345) % sizes[k], sizes[k] - 1}) {
                    sg::parameter_store one(sg::dtype::f32);
                    auto u = one.add("u", xt::xarray<double>{value_at(k, i)});
                    auto opt = f(one);
                    for (int step = 0; step < 2; ++step) {
                        u.grad<float>()(0) = static_cast<float>(grad_at(k, i, step));
                        opt->step();
                    }
                    const double got = after[1][k](i), want = u.value<float>()(0);
                    BOOST_TEST(std::abs(got - want) <= 1e-6 * (1.0 + std::abs(want)),
                               "w" << k << "[" << i << "] = " << got << ", one-entry store " << want);
                }
        }
    }
}

// A gradient whose size differs from its value's throws shape_error before anything moves.
BOOST_AUTO_TEST_CASE(bad_gradient_shape) {
    sg::parameter_store ps(sg::dtype::f64);
    auto a = ps.add("a", xt::xarray<double>{1.0, 2.0});
    auto b = ps.add("b", xt::xarray<double>{3.0, 4.0});
    set_grad(a, {1.0, 1.0});
    b.grad<double>() = xt::xarray<double>{1.0, 1.0, 1.0};
    so::sgd opt(ps, 0.1);
    BOOST_CHECK_THROW(opt.step(), sg::shape_error);
    BOOST_TEST(a.value_as_double() == (xt::xarray<double>{1.0, 2.0}));
}

// Momentum survives parameter_store::to(): float steps then double steps match an all-double run.
BOOST_AUTO_TEST_CASE(state_follows_store_dtype) {
    const so::sgd_options o{.lr = 0.1, .momentum = 0.9};
    sg::parameter_store a(sg::dtype::f32), b(sg::dtype::f64);
    auto wa = a.add("w", xt::xarray<double>{1.0, -2.0});
    auto wb = b.add("w", xt::xarray<double>{1.0, -2.0});
    so::sgd oa(a, o), ob(b, o);
    set_grad(wa, {0.5, -1.0});
    set_grad(wb, {0.5, -1.0});
    oa.step();
    ob.step();
    a.to(sg::dtype::f64);
    set_grad(wa, {0.1, 0.2});
    set_grad(wb, {0.1, 0.2});
    oa.step();
    ob.step();
    BOOST_TEST((oa.state(0)->dt == sg::dtype::f64));
    BOOST_TEST(std::abs(wa.value_as_double()(0) - 0.895) <= 1e-6);  // as in sgd/momentum
    BOOST_TEST(std::abs(wa.value_as_double()(1) - wb.value_as_double()(1)) <= 1e-6);
}

BOOST_AUTO_TEST_CASE(reset_state) {
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{1.0, -2.0});
    so::sgd opt(ps, {.lr = 0.1, .momentum = 0.9});
    set_grad(w, {0.5, -1.0});
    opt.step();
    opt.reset_state();
    BOOST_TEST(opt.state(0) == nullptr);
    set_grad(w, {0.1, 0.2});
    opt.step();  // b = g2 afresh: w2 = (0.95 - 0.01, -1.9 - 0.02)
    BOOST_TEST(std::abs(w.value_as_double()(0) - 0.94) <= 1e-12);
    BOOST_TEST(std::abs(w.value_as_double()(1) + 1.92) <= 1e-12);
    BOOST_TEST(opt.steps() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
