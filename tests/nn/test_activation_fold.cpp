// Activations folded into their reader's backward (core/backward_fold.hpp) held equal to the
// plain graph and to hand-computed gradients: what folds, what must not (two activations of one
// input in one reader, a reader that broadcasts the activation), and folds inside the concurrent
// passes of truncated BPTT.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;

BOOST_AUTO_TEST_SUITE(activation_fold)

// An activation read by one op folds into that op's backward (its input's gradient written in the
// reader's pass); tape::grad of the activation is recomputed on request and equals the plain
// graph's. Not folded: an activation read twice, one whose reader writes through emit_rows (a row
// sum) or target() (a product with a broadcast row), which unfold it, one whose reader's own
// backward was folded (exp under tanh).
BOOST_AUTO_TEST_CASE(activations_fold_into_their_only_reader) {
    std::mt19937_64 rng(15);
    const xt::xarray<double> xv = random_array({3, 5}, rng), vv = random_array({3, 5}, rng),
                             rv = random_array({1, 5}, rng);
    std::vector<xt::xarray<double>> grads[3];
    for (const int run : {0, 1, 2}) {
        const bool on = run > 0, fold = run == 1;
        sg::detail::set_activation_folding(fold);
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), v = t.input(vv, true), row = t.input(rv);
        const sg::expr s = sg::sigmoid(x), r = sg::relu(v), e = sg::exp(x * 0.5), te = sg::tanh(e), tx = sg::tanh(x),
                       sv = sg::sigmoid(v);
        const sg::expr loss = sg::sum(s * v) + sg::sum(sg::sum(r, 1) * 1.5) + sg::sum(te * v) + sg::sum(tx * tx) +
                              sg::sum(sv * row);
        t.backward(loss);
        sg::detail::set_activation_folding(true);
        BOOST_TEST(t.optimizations().activations_folded == (fold ? 2u : 0u), "run " << run);
        for (const sg::expr& n : {x, v, s, r, e, te, tx, sv}) {
            BOOST_TEST(t.has_grad(n));
            grads[run].push_back(t.grad(n));
        }
    }
    for (std::size_t q = 0; q < grads[0].size(); ++q) {
        for (const int run : {1, 2})
            BOOST_TEST(max_diff(grads[0][q], grads[run][q]) <= 1e-14, "run " << run << ", gradient " << q);
        BOOST_TEST(xt::sum(xt::abs(grads[0][q]))() > 0.1, "gradient " << q);
    }
}

// Two activations of one input read by one op (tanh(x) * sigmoid(x)): one folds, the other is swept
// on its own and adds to the first's gradient (both folded, the second overwrote the first).
BOOST_AUTO_TEST_CASE(two_activations_of_one_input_in_one_reader) {
    std::mt19937_64 rng(17);
    const xt::xarray<double> xv = random_array({3, 5}, rng), vv = random_array({3, 5}, rng);
    std::vector<xt::xarray<double>> grads[2];
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr x = t.input(xv, true), v = t.input(vv, true), p = sg::split(x, 5, 1)[2];
        const sg::expr loss = sg::sum(sg::tanh(x) * sg::tanh(x)) + sg::sum(sg::sigmoid(x) * sg::tanh(x)) +
                              sg::sum(sg::maximum(sg::relu(v), sg::exp(v))) + sg::sum(sg::exp(v) / sg::exp(v)) +
                              sg::sum(sg::tanh(p) * sg::sigmoid(p));
        t.backward(loss);
        BOOST_TEST(t.optimizations().activations_folded == (on ? 5u : 0u));
        grads[on] = {t.grad(x), t.grad(v)};
    }
    // By hand: d/dx [tanh^2 + s tanh] = 2 tanh (1 - tanh^2) + s (1 - s) tanh + s (1 - tanh^2), plus
    // the same again on column 2 (p); exp(v) / exp(v) is constant, max(relu, exp) = exp.
    const xt::xarray<double> th = xt::tanh(xv), sg_ = 1.0 / (1.0 + xt::exp(-xv));
    xt::xarray<double> dx = 2.0 * th * (1.0 - th * th) + sg_ * (1.0 - sg_) * th + sg_ * (1.0 - th * th);
    for (std::size_t r = 0; r < 3; ++r) {
        const double t2 = th(r, 2), s2 = sg_(r, 2);
        dx(r, 2) += s2 * (1.0 - s2) * t2 + s2 * (1.0 - t2 * t2);
    }
    const xt::xarray<double> dv = xt::exp(vv);
    for (const bool on : {false, true}) {
        BOOST_TEST(max_diff(grads[on][0], dx) <= 1e-14, "optimised " << on);
        BOOST_TEST(max_diff(grads[on][1], dv) <= 1e-14, "optimised " << on);
    }
}

// An activation broadcast by its reader (broadcast_to, where: ops that leave the sum over the
// broadcast axes to the engine) is not folded: the fold skipped that sum and took the first rows.
BOOST_AUTO_TEST_CASE(an_activation_broadcast_by_its_reader_is_not_folded) {
    const xt::xarray<double> r = {{1., 2., 3.}, {-1., 0.5, 2.}, {0.25, -3., 1.}};
    const xt::xarray<double> cond = {{1., 0., 1.}, {0., 1., 1.}, {1., 1., 0.}};
    for (const std::vector<std::size_t>& xs : {std::vector<std::size_t>{1, 3}, {3, 1}, {3}})
        for (const bool via_where : {false, true}) {
            xt::xarray<double> xv = xt::xarray<double>::from_shape(xs);
            const double vals[] = {0.3, -0.7, 0.5};
            std::copy(vals, vals + 3, xv.begin());
            xt::xarray<double> grads[2];
            for (const bool on : {false, true}) {
                sg::tape t(sg::dtype::f64);
                t.set_optimize(on);
                const sg::expr x = t.input(xv, true), s = sg::sigmoid(x);
                const sg::expr z = via_where ? sg::where(t.input(cond), s, t.input(r)) : sg::broadcast_to(s, {3, 3});
                t.backward(sg::sum(z * t.input(r)));
                grads[on] = t.grad(x);
            }
            // By hand: s'(x) times the sum of r (masked by cond for where) over the broadcast axis.
            xt::xarray<double> want = xt::xarray<double>::from_shape(xs);
            for (std::size_t k = 0; k < 3; ++k) {
                const double sk = 1.0 / (1.0 + std::exp(-vals[k]));
                double acc = 0;
                for (std::size_t q = 0; q < 3; ++q) {
                    const std::size_t i = xs[0] == 3 && xs.size() == 2 ? k : q,
                                      j = xs[0] == 3 && xs.size() == 2 ? q : k;
                    acc += r(i, j) * (via_where ? cond(i, j) : 1.0);
                }
                want.data()[k] = sk * (1 - sk) * acc;
            }
            for (const bool on : {false, true})
                BOOST_TEST(max_diff(grads[on], want) <= 1e-14, "optimised " << on << ", where " << via_where);
        }
}

// The same in the concurrent passes of truncated BPTT (overlapping windows, k2 > k1): the cell's
// activations fold in every window that sweeps them, and each shows its owning window's gradient.
BOOST_AUTO_TEST_CASE(activations_fold_in_truncation_windows) {
    constexpr std::size_t steps = 6, rows = 2, hid = 3;
    std::mt19937_64 rng(16);
    const xt::xarray<double> uv = random_array({hid, 4 * hid}, rng);
    std::vector<xt::xarray<double>> xv;
    for (std::size_t k = 0; k < steps; ++k) xv.push_back(random_array({rows, 4 * hid}, rng));
    std::vector<xt::xarray<double>> grads[2];
    for (const bool on : {false, true}) {
        sg::tape t(sg::dtype::f64);
        t.set_optimize(on);
        const sg::expr u = t.input(uv, true);
        sg::expr h = t.constant(0.0, {rows, hid}), c = h;
        std::vector<sg::expr> shown, losses;
        for (std::size_t k = 0; k < steps; ++k) {
            sg::step_scope scope(t, static_cast<int>(k), static_cast<int>(k) - 1);
            auto q = sg::split(t.input(xv[k], true) + sg::matmul(h, u), 4);
            const sg::expr f = sg::sigmoid(q[1]), i = sg::sigmoid(q[0]), g = sg::tanh(q[2]);
            c = f * c + i * g;
            const sg::expr o = sg::sigmoid(q[3]), tc = sg::tanh(c);
            h = o * tc;
            shown.insert(shown.end(), {f, i, g, o, tc, c});
            losses.push_back(sg::sum(h * h));
        }
        sg::expr loss = losses[0];
        for (std::size_t k = 1; k < steps; ++k) loss = loss + losses[k];
        t.backward(loss, sg::truncate_bptt(2, 3));
        // Each step's five activations in its own window at least (the windows' passes; the
        // untimed loss has none).
        const std::size_t folds = t.optimizations().activations_folded;
        BOOST_TEST((on ? folds >= 5 * steps : folds == 0), folds);
        grads[on].push_back(t.grad(u));
        for (const sg::expr& e : shown) grads[on].push_back(t.grad(e));
    }
    for (std::size_t q = 0; q < grads[0].size(); ++q)
        BOOST_TEST(max_diff(grads[0][q], grads[1][q]) <= 1e-14, "gradient " << q);
    BOOST_TEST(xt::sum(xt::abs(grads[0][0]))() > 0.1);
}

// Overlapping windows (truncate_bptt(3, 5)): a step whose gradient comes only from a window that does
// not own it (step 2 here: its window [0, 3) gives it none; [3, 6) reaches back and folds its
// activations) shows that window's gradient, as the plain graph does; reading one crashed (the reader
// had no gradient to refold), and before the windows' gradients were summed it read none.
BOOST_AUTO_TEST_CASE(a_fold_by_a_window_that_does_not_own_the_step) {
    for (const bool clip : {false, true}) {
        std::vector<bool> has[2];
        std::vector<xt::xarray<double>> grads[2];
        for (const bool on : {false, true}) {
            sg::tape t(sg::dtype::f64);
            t.set_optimize(on);
            const sg::expr w = t.input(xt::xarray<double>{{0.9, -0.4}, {0.3, 0.8}}, true);
            sg::expr h = t.input(xt::xarray<double>{{0.5, -0.3}}, true), total;
            std::vector<sg::expr> shown;
            for (int s = 0; s < 6; ++s) {
                sg::expr term;
                {
                    sg::step_scope scope(t, s, s ? s - 1 : -1);
                    const sg::expr r = sg::relu(sg::matmul(h, w)), y = sg::tanh(r);
                    shown.insert(shown.end(), {r, y});
                    h = y + sg::sigmoid(h);
                    t.mark_state(h);
                    if (s % 2 == 1) term = sg::sum(h);
                }
                if (term.valid()) total = total.valid() ? total + term : term;
            }
            t.backward(total, clip ? sg::truncate_bptt(3, 5) | sg::clip_state_gradient(0.1) : sg::truncate_bptt(3, 5));
            for (const sg::expr& e : shown) {
                has[on].push_back(t.has_grad(e));
                grads[on].push_back(t.has_grad(e) ? t.grad(e) : xt::xarray<double>());
            }
            grads[on].push_back(t.grad(w));
            if (on) BOOST_TEST(t.optimizations().activations_folded > 0u);
        }
        BOOST_TEST(has[0] == has[1], boost::test_tools::per_element());
        BOOST_TEST(has[0][4]);  // step 2's relu: from the window [3, 6) alone
        for (std::size_t q = 0; q < grads[0].size(); ++q)
            if (grads[0][q].size()) BOOST_TEST(max_diff(grads[0][q], grads[1][q]) <= 1e-14, "gradient " << q);
    }
}

BOOST_AUTO_TEST_SUITE_END()
