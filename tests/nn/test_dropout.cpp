// The dropout family (nn/dropout.hpp): kept fractions and scaling, mask reuse across steps for the
// variational kind, whole rows for embedding dropout, one mask per sequence for DropConnect,
// zoneout's two modes, exact identity in evaluation, determinism under a seed, and gradients.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

A ones(std::vector<std::size_t> shp) { return xt::ones<double>(shp); }

double kept_fraction(const A& y) {
    std::size_t kept = 0;
    for (double v : y) kept += v != 0;
    return static_cast<double>(kept) / static_cast<double>(y.size());
}

std::size_t count_nodes(const sg::tape& t, const char* op) {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < t.size(); ++i) n += t.node_at(i).op && t.node_at(i).op->name == op;
    return n;
}

sg::tape& training(sg::tape& t, std::uint64_t seed = 11) {
    t.set_training(true);
    t.set_seed(seed);
    return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dropout)

BOOST_AUTO_TEST_CASE(standard_dropout_keeps_one_minus_p_and_scales_by_its_inverse) {
    for (double p : {0.1, 0.3, 0.6}) {
        sg::tape t(sg::dtype::f64);
        training(t);
        const A y = t.value(nn::dropout(t.input(ones({200, 500})), p));
        // 100,000 entries: the kept fraction's standard deviation is below 0.0016.
        BOOST_TEST(std::abs(kept_fraction(y) - (1 - p)) < 0.008, "p " << p << ": kept " << kept_fraction(y));
        for (double v : y) BOOST_TEST_REQUIRE((v == 0 || std::abs(v - 1 / (1 - p)) < 1e-12));
        BOOST_TEST(std::abs(xt::mean(y)() - 1) < 0.015);  // inverted: the expectation is kept
    }
}

BOOST_AUTO_TEST_CASE(every_kind_is_the_identity_in_evaluation) {
    sg::parameter_store ps(sg::dtype::f64);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 3, 4);
    sg::tape t(sg::dtype::f64);  // evaluation is the default
    BOOST_TEST(!t.training());
    std::mt19937_64 rng(3);
    const sg::expr x = t.input(random_array({5, 4}, rng)), prev = t.input(random_array({5, 4}, rng));
    const std::size_t before = t.size();
    BOOST_TEST(nn::dropout(x, 0.5).id() == x.id());
    BOOST_TEST(nn::locked_dropout(t, 0.5, {5, 4})(x).id() == x.id());
    BOOST_TEST(nn::embedding_dropout(x, 0.5).id() == x.id());
    BOOST_TEST(nn::drop_connect(x, 0.5).id() == x.id());
    const nn::weight_dropped_lstm wd(t, cell, 0.5);
    BOOST_TEST(wd.w_hh.id() == t.param(cell.w_hh).id());
    BOOST_TEST(t.size() == before + 1);  // only the w_hh leaf: no mask node
    // Zoneout in evaluation is its expectation z * prev + (1 - z) * next.
    const A want = 0.25 * t.value(prev) + 0.75 * t.value(x);
    BOOST_TEST(xt::allclose(t.value(nn::zoneout(prev, x, 0.25)), want, 1e-15, 1e-15));
    // And p = 0 is the identity in training too.
    training(t);
    BOOST_TEST(nn::dropout(x, 0.0).id() == x.id());
    BOOST_TEST(nn::zoneout(prev, x, 0.0).id() == x.id());
    // A mismatched pair is refused at z = 0 too, where zoneout has nothing to do.
    BOOST_CHECK_THROW(nn::zoneout(prev, t.input(xt::xarray<double>(xt::zeros<double>({7, 2}))), 0.0), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(variational_dropout_reuses_one_mask_at_every_step) {
    sg::tape t(sg::dtype::f64);
    training(t);
    const std::size_t B = 64, H = 100, T = 5;
    const nn::locked_dropout locked(t, 0.4, {B, H});
    BOOST_TEST(locked.active());
    std::vector<A> steps;
    for (std::size_t k = 0; k < T; ++k) steps.push_back(t.value(locked(t.input(ones({B, H})))));
    for (std::size_t k = 1; k < T; ++k) BOOST_TEST((steps[k] == steps[0]));
    BOOST_TEST(std::abs(kept_fraction(steps[0]) - 0.6) < 0.025);  // 6,400 entries: sd 0.006
    // All steps at once, [T*B, H] time-major: the mask repeats over the blocks of B rows.
    const A all = t.value(locked(t.input(ones({T * B, H}))));
    for (std::size_t k = 0; k < T; ++k)
        BOOST_TEST((xt::view(all, xt::range(k * B, (k + 1) * B), xt::all()) == steps[0]));
    // A fresh standard mask differs from step to step.
    const A a = t.value(nn::dropout(t.input(ones({B, H})), 0.4)), b = t.value(nn::dropout(t.input(ones({B, H})), 0.4));
    BOOST_TEST(!(a == b));
    BOOST_CHECK_THROW(locked(t.input(ones({B, H + 1}))), sg::shape_error);
    BOOST_CHECK_THROW(locked(t.input(ones({B + 1, H}))), sg::shape_error);
}

BOOST_AUTO_TEST_CASE(variational_dropout_refuses_inputs_that_would_not_reuse_the_mask) {
    // The mask repeats every mask.size() entries of x. For x [T, 3, 3] and a [2, 3] mask, or rows
    // of 3 and a [6] mask, an entry of x would meet a different mask entry at each step.
    sg::tape t(sg::dtype::f64);
    training(t);
    const nn::locked_dropout rows(t, 0.5, {2, 3}), flat(t, 0.5, {6});
    try {
        rows(t.input(ones({4, 3, 3})));
        BOOST_FAIL("expected shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("locked_dropout") != std::string::npos, m);
        BOOST_TEST(m.find("[4, 3, 3]") != std::string::npos, m);
        BOOST_TEST(m.find("[2, 3]") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(flat(t.input(ones({4, 3}))), sg::shape_error);
    // Rows of the mask stacked are accepted, and every row of x meets the same mask row each step.
    const A y = t.value(rows(t.input(ones({5, 4, 3}))));
    for (std::size_t k = 0; k < 5; ++k)
        for (std::size_t b = 0; b < 4; ++b)
            BOOST_TEST((xt::view(y, k, b, xt::all()) == xt::view(y, 0, b % 2, xt::all())));
    BOOST_TEST((t.value(flat(t.input(ones({2, 12})))).shape() == std::vector<std::size_t>{2, 12}));
}

BOOST_AUTO_TEST_CASE(embedding_dropout_drops_whole_words) {
    sg::tape t(sg::dtype::f64);
    training(t);
    const std::size_t V = 4000, E = 8;
    const A y = t.value(nn::embedding_dropout(t.input(ones({V, E})), 0.3));
    std::size_t dropped = 0;
    for (std::size_t v = 0; v < V; ++v) {
        const auto row = xt::view(y, v, xt::all());
        const bool zero = row(0) == 0;
        dropped += zero;
        for (std::size_t e = 0; e < E; ++e) BOOST_TEST_REQUIRE(row(e) == (zero ? 0.0 : 1 / 0.7));
    }
    BOOST_TEST(std::abs(static_cast<double>(dropped) / V - 0.3) < 0.03);  // sd 0.0072
    // Every occurrence of a word shares its fate: gathered rows of the dropped table.
    const std::vector<int> ids = {5, 9, 5, 5, 9};
    const A g = t.value(sg::gather_rows(nn::embedding_dropout(t.input(ones({V, E})), 0.5), ids));
    BOOST_TEST((xt::view(g, 0, xt::all()) == xt::view(g, 2, xt::all())));
    BOOST_TEST((xt::view(g, 1, xt::all()) == xt::view(g, 4, xt::all())));
}

BOOST_AUTO_TEST_CASE(weight_dropped_lstm_uses_one_dropped_w_hh_for_the_sequence) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(5);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 3, 6, rng);
    std::vector<A> xs_v;
    for (int k = 0; k < 4; ++k) xs_v.push_back(random_array({2, 3}, rng));

    sg::tape t(sg::dtype::f64);
    training(t, 21);
    const nn::weight_dropped_lstm wd(t, cell, 0.5);
    std::vector<sg::expr> xs;
    for (const A& v : xs_v) xs.push_back(t.input(v));
    const auto states = nn::unroll(t, wd, std::span<const sg::expr>(xs));
    BOOST_TEST(count_nodes(t, "random_mask") == 1u);
    const A dropped = t.value(wd.w_hh);
    const double kept = kept_fraction(dropped);
    BOOST_TEST((kept > 0.3 && kept < 0.7));

    // The same as the plain cell whose w_hh holds the dropped values.
    sg::parameter_store ps2(sg::dtype::f64);
    nn::lstm_cell plain(sg::parameter_scope(ps2, "lstm"), 3, 6, rng);
    plain.w_ih.assign(cell.w_ih.value_as_double());
    plain.b_ih.assign(cell.b_ih.value_as_double());
    plain.b_hh.assign(cell.b_hh.value_as_double());
    plain.w_hh.assign(dropped);
    sg::tape u(sg::dtype::f64);
    std::vector<sg::expr> us;
    for (const A& v : xs_v) us.push_back(u.input(v));
    const auto ref = nn::unroll(u, plain, std::span<const sg::expr>(us));
    BOOST_TEST(xt::allclose(t.value(states.back().h), u.value(ref.back().h), 1e-14, 1e-14));

    // lstm_layer(cell, weight_drop) draws the same mask from the same seed and agrees.
    sg::tape v(sg::dtype::f64);
    training(v, 21);
    std::vector<sg::expr> vs;
    for (const A& a : xs_v) vs.push_back(v.input(a));
    const nn::detail::lstm_sequence seq = nn::detail::lstm_layer(cell, 0.5)(sg::concat(vs, 0), 2);
    BOOST_TEST(xt::allclose(v.value(seq.final_state().h), u.value(ref.back().h), 1e-12, 1e-12));

    // A c that is not [B, H] is refused as lstm_cell refuses it (f * c broadcast [1, H] and [H]).
    const sg::expr x = t.input(xs_v[0]), h = t.input(A(xt::zeros<double>({2, 6})));
    for (const std::vector<std::size_t>& c : {std::vector<std::size_t>{1, 6}, {6}, {2, 7}}) {
        try {
            wd(x, {h, t.input(A(xt::zeros<double>(c)))});
            BOOST_ERROR("expected shape_error");
        } catch (const sg::shape_error& e) {
            const std::string m = e.what();
            BOOST_TEST(m.find("weight_dropped_lstm") != std::string::npos, m);
            BOOST_TEST(m.find("c " + sg::shape(c).str()) != std::string::npos, m);
        }
    }
}

BOOST_AUTO_TEST_CASE(zoneout_keeps_the_previous_value_with_probability_z) {
    sg::tape t(sg::dtype::f64);
    training(t);
    const A prev_v = ones({100, 200}), next_v = 2 * ones({100, 200});
    const sg::expr prev = t.input(prev_v), next = t.input(next_v);
    const A y = t.value(nn::zoneout(prev, next, 0.3));
    std::size_t kept_prev = 0;
    for (double v : y) {
        BOOST_TEST_REQUIRE((v == 1.0 || v == 2.0));
        kept_prev += v == 1.0;
    }
    BOOST_TEST(std::abs(kept_prev / 20000.0 - 0.3) < 0.015);
    // Exactly one or the other, whatever their magnitudes: next + mask * (prev - next) rounded a
    // kept 1e-20 beside 1 to 0, and made every unit NaN where next was infinite.
    for (const double big : {1.0, std::numeric_limits<double>::infinity()}) {
        const A y2 = t.value(nn::zoneout(t.input(A(1e-20 * prev_v)), t.input(A(big * prev_v)), 0.5));
        std::size_t kept = 0;
        for (double v : y2) {
            BOOST_TEST_REQUIRE((v == 1e-20 || v == big));
            kept += v == 1e-20;
        }
        BOOST_TEST(std::abs(kept / 20000.0 - 0.5) < 0.015);
    }
    // Each call draws a fresh mask.
    BOOST_TEST(!(t.value(nn::zoneout(prev, next, 0.3)) == y));
    BOOST_CHECK_THROW(nn::zoneout(prev, t.input(ones({100, 3})), 0.3), sg::shape_error);
    // A tiny z is in [0, 1) too: 1 - z rounds to 1, so nothing is kept (random_mask refused the
    // drop probability 1 with an error naming neither zoneout nor z).
    BOOST_TEST((t.value(nn::zoneout(prev, next, 1e-17)) == next_v));
    BOOST_TEST((t.value(nn::zoneout(prev, next, 0x1p-54)) == next_v));
}

BOOST_AUTO_TEST_CASE(zoneout_cell_wraps_a_cell_for_unroll) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(8);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 3, 5, rng);
    const nn::zoneout_cell zc{cell, 0.1, 0.5};
    std::vector<A> xs_v;
    for (int k = 0; k < 4; ++k) xs_v.push_back(random_array({2, 3}, rng));
    for (bool train : {false, true}) {
        sg::tape t(sg::dtype::f64);
        if (train) training(t);
        std::vector<sg::expr> xs;
        for (const A& v : xs_v) xs.push_back(t.input(v));
        const auto states = nn::unroll(t, zc, std::span<const sg::expr>(xs));
        // By hand: the plain cell's step, then the zoneout of h and c.
        nn::lstm_state s = cell.initial_state(t, 2);
        for (std::size_t k = 0; k < xs.size(); ++k) {
            const nn::lstm_state next = cell(xs[k], s);
            if (!train) {
                s = {next.h + (s.h - next.h) * 0.1, next.c + (s.c - next.c) * 0.5};
                BOOST_TEST(xt::allclose(t.value(states[k].h), t.value(s.h), 1e-15, 1e-15));
                BOOST_TEST(xt::allclose(t.value(states[k].c), t.value(s.c), 1e-15, 1e-15));
            }
        }
        BOOST_TEST(count_nodes(t, "random_mask") == (train ? 8u : 0u));  // h and c, each step
    }
}

BOOST_AUTO_TEST_CASE(masks_depend_on_the_seed_and_draw_order_only) {
    const auto masks = [](std::uint64_t seed, bool extra_nodes) {
        sg::tape t(sg::dtype::f64);
        training(t, seed);
        if (extra_nodes) t.value(sg::tanh(t.input(ones({3, 3}))) * 2.0);  // unrelated work between
        A a = t.value(nn::dropout(t.input(ones({50, 50})), 0.5));
        A b = t.value(nn::dropout(t.input(ones({50, 50})), 0.5));
        return std::pair{a, b};
    };
    const auto m1 = masks(7, false), m2 = masks(7, true), m3 = masks(8, false);
    BOOST_TEST((m1.first == m2.first));
    BOOST_TEST((m1.second == m2.second));
    BOOST_TEST(!(m1.first == m3.first));
    // The mask is the documented stateless function of (seed, draw, entry).
    for (std::size_t j = 0; j < 2500; ++j)
        BOOST_TEST_REQUIRE((m1.second.data()[j] != 0) == sg::mask_keeps(7, 1, j, 0.5));
    // And the same under any BLAS/TBB thread count: drawing happens in the kernel, not a shared generator.
    sg::set_blas_threads(2);
    const auto m4 = masks(7, false);
    sg::set_blas_threads(0);  // back to the default: the executor threads BLAS
    BOOST_TEST((m4.first == m1.first));
}

BOOST_AUTO_TEST_CASE(bad_probabilities_are_value_errors) {
    sg::tape t(sg::dtype::f64);
    const sg::expr x = t.input(ones({2, 2}));
    BOOST_CHECK_THROW(nn::dropout(x, 1.0), sg::value_error);
    BOOST_CHECK_THROW(nn::dropout(x, -0.1), sg::value_error);
    BOOST_CHECK_THROW(nn::locked_dropout(t, 1.5, {2, 2}), sg::value_error);
    BOOST_CHECK_THROW(nn::zoneout(x, x, 1.0), sg::value_error);
    BOOST_CHECK_THROW(nn::embedding_dropout(t.input(ones({2, 2, 2})), 0.1), sg::shape_error);
    // The value as given: std::to_string printed 1 + 1e-9 as 1.000000 and -1e-9 as -0.000000.
    seqgrad_test::expect_error<sg::value_error>([&] { nn::dropout(x, 1 + 1e-9); }, "got 1.000000001");
    seqgrad_test::expect_error<sg::value_error>([&] { nn::dropout(x, -1e-9); }, "got -1e-09");
    seqgrad_test::expect_error<sg::value_error>(
        [&] { sg::layer_norm(x, t.input(ones({2})), t.input(ones({2})), -1e-12); }, "expected eps > 0, got -1e-12");
}

BOOST_AUTO_TEST_CASE(stacked_and_bidirectional_take_dropout_between_layers) {
    sg::parameter_store ps(sg::dtype::f64);
    auto deep = nn::make_stacked<nn::gru_cell>(sg::parameter_scope(ps, "deep"), 3, 4, 5);
    std::mt19937_64 rng(9);
    std::vector<A> xs_v;
    for (int k = 0; k < 6; ++k) xs_v.push_back(random_array({2, 4}, rng));
    const auto run = [&](bool train, double p, std::size_t* masks = nullptr) {
        sg::tape t(sg::dtype::f64);
        if (train) training(t);
        auto d = deep;
        d.dropout = p;
        std::vector<sg::expr> xs;
        for (const A& v : xs_v) xs.push_back(t.input(v));
        const auto states = nn::unroll(t, d, std::span<const sg::expr>(xs));
        if (masks) *masks = count_nodes(t, "random_mask");
        return A(t.value(nn::hidden(states.back())));
    };
    std::size_t masks = 0;
    const A plain = run(false, 0.0), eval = run(false, 0.5), trained = run(true, 0.5, &masks);
    BOOST_TEST((eval == plain));
    BOOST_TEST(!xt::allclose(trained, plain));
    BOOST_TEST(masks == 6u * 2u);  // a fresh mask per step between each pair of layers (2 of them)

    nn::bidirectional<nn::gru_cell> bi{nn::gru_cell(sg::parameter_scope(ps, "f"), 4, 3),
                                       nn::gru_cell(sg::parameter_scope(ps, "b"), 4, 3), 0.5};
    sg::tape t(sg::dtype::f64);
    training(t);
    std::vector<sg::expr> xs;
    for (const A& v : xs_v) xs.push_back(t.input(v));
    const auto r = bi(t, xs);
    BOOST_TEST(count_nodes(t, "random_mask") == 6u);
    BOOST_TEST(r.outputs[0].shape() == sg::shape({2, 6}));
}

BOOST_AUTO_TEST_CASE(gradients_through_every_kind_in_training_mode) {
    // Masks are a function of the seed, so each of gradcheck's evaluations draws the same ones.
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(13);
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), 3, 4, rng);
    nn::embedding emb(sg::parameter_scope(ps, "emb"), 6, 3, rng);
    const std::vector<int> ids = {1, 4, 2, 1, 5, 0};  // T = 3 steps of B = 2
    const auto loss = [&](sg::tape& t) {
        training(t, 17);
        const sg::expr table = nn::embedding_dropout(t.param(emb.weight), 0.3);
        const nn::weight_dropped_lstm wd(t, cell, 0.4);
        const nn::locked_dropout in_drop(t, 0.3, {2, 3}), out_drop(t, 0.3, {2, 4});
        nn::lstm_state s = cell.initial_state(t, 2);
        sg::expr total = t.constant(0.0);
        for (std::size_t k = 0; k < 3; ++k) {
            const sg::expr x = sg::gather_rows(table, std::span<const int>(ids).subspan(2 * k, 2));
            s = nn::zoneout(s, wd(in_drop(x), s), 0.2, 0.4);
            total = total + sg::sum(sg::square(nn::dropout(out_drop(s.h), 0.2)));
        }
        return total;
    };
    const auto report = sg::gradcheck(ps, loss);
    BOOST_TEST(report.passed, report);
}

BOOST_AUTO_TEST_SUITE_END()
