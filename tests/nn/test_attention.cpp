// Attention: every score function against a plain-loop reference, masks (including rows with
// every position masked: zero context, zero gradients, no NaN), the step-by-step path against the
// all-steps batched path (values and gradients), gradcheck in double over parameters, memory and
// queries, and the error messages.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/nn/attention.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

constexpr std::size_t B = 3, S = 4, T = 2, DQ = 3, DM = 5, A = 4;
const nn::attention_score all_scores[] = {nn::attention_score::additive, nn::attention_score::dot,
                                          nn::attention_score::general, nn::attention_score::concat,
                                          nn::attention_score::scaled_dot};
// Row 0 full, row 1 partly masked, row 2 fully masked.
const std::vector<std::size_t> lengths = {4, 2, 0};

std::size_t query_size(nn::attention_score s) {
    return s == nn::attention_score::dot || s == nn::attention_score::scaled_dot ? DM : DQ;
}

// A model (f64) and its inputs in a store of their own, so gradcheck covers memory and queries.
struct fixture {
    sg::parameter_store ps{sg::dtype::f64}, data{sg::dtype::f64};
    nn::attention att;
    sg::parameter memory, queries;
    xt::xarray<double> w_ctx, w_alpha;

    explicit fixture(nn::attention_score s, std::uint64_t seed = 7)
        : att(sg::parameter_scope(ps, "att"), s, query_size(s), DM, A) {
        std::mt19937_64 rng(seed);
        memory = data.add("memory", random_array({B, S, DM}, rng));
        queries = data.add("queries", random_array({B, T, query_size(s)}, rng));
        w_ctx = random_array({B, T, DM}, rng);
        w_alpha = random_array({B, T, S}, rng);
    }
    // context [B, T, DM] and weights [B, T, S] by either path.
    nn::attention_output run(sg::tape& t, bool batched, bool masked) const {
        const nn::attention_memory m = att.prepare(t.param(memory), masked ? lengths : std::vector<std::size_t>{});
        const sg::expr q = t.param(queries);
        if (batched) return att.all_steps(m, q);
        std::vector<sg::expr> ctx, alpha;
        for (std::size_t k = 0; k < T; ++k) {
            const auto o = att(m, sg::reshape(sg::slice(q, 1, k, k + 1), {B, query_size(att.score)}));
            ctx.push_back(sg::reshape(o.context, {B, 1, DM}));
            alpha.push_back(sg::reshape(o.weights, {B, 1, S}));
        }
        return {sg::concat(ctx, 1), sg::concat(alpha, 1)};
    }
    sg::expr loss(sg::tape& t, bool batched, bool masked) const {
        const auto o = run(t, batched, masked);
        return sg::sum(o.context * t.input(w_ctx)) + sg::sum(o.weights * t.input(w_alpha));
    }
};

// Scores by plain loops from the parameter values.
xt::xarray<double> reference_scores(const fixture& f) {
    const auto mem = f.memory.value_as_double(), q = f.queries.value_as_double();
    xt::xarray<double> e = xt::zeros<double>({B, T, S});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t k = 0; k < T; ++k)
            for (std::size_t s = 0; s < S; ++s) {
                double v = 0;
                switch (f.att.score) {
                case nn::attention_score::dot:
                case nn::attention_score::scaled_dot:
                    for (std::size_t i = 0; i < DM; ++i) v += q(b, k, i) * mem(b, s, i);
                    if (f.att.score == nn::attention_score::scaled_dot) v /= std::sqrt(double(DM));
                    break;
                case nn::attention_score::general: {
                    const auto w = f.att.w.value_as_double();
                    for (std::size_t i = 0; i < DQ; ++i)
                        for (std::size_t j = 0; j < DM; ++j) v += q(b, k, i) * w(i, j) * mem(b, s, j);
                    break;
                }
                case nn::attention_score::additive:
                case nn::attention_score::concat: {
                    const bool add = f.att.score == nn::attention_score::additive;
                    const auto vv = f.att.v.value_as_double();
                    for (std::size_t a = 0; a < A; ++a) {
                        double h = 0;
                        if (add) {
                            const auto wq = f.att.w_q.value_as_double(), wk = f.att.w_k.value_as_double();
                            h = f.att.b.value_as_double()(a);
                            for (std::size_t i = 0; i < DQ; ++i) h += wq(a, i) * q(b, k, i);
                            for (std::size_t j = 0; j < DM; ++j) h += wk(a, j) * mem(b, s, j);
                        } else {
                            const auto w = f.att.w.value_as_double();
                            for (std::size_t i = 0; i < DQ; ++i) h += w(a, i) * q(b, k, i);
                            for (std::size_t j = 0; j < DM; ++j) h += w(a, DQ + j) * mem(b, s, j);
                        }
                        v += vv(0, a) * std::tanh(h);
                    }
                    break;
                }
                }
                e(b, k, s) = v;
            }
    return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(attention)

BOOST_AUTO_TEST_CASE(every_score_matches_a_plain_loop_reference_with_and_without_masks) {
    for (auto score : all_scores)
        for (bool masked : {false, true}) BOOST_TEST_CONTEXT(nn::to_string(score) << (masked ? " masked" : "")) {
                fixture f(score);
                sg::tape t(sg::dtype::f64);
                const auto o = f.run(t, true, masked);
                const auto e = reference_scores(f);
                const auto mem = f.memory.value_as_double();
                const auto alpha = t.value(o.weights), ctx = t.value(o.context);
                for (std::size_t b = 0; b < B; ++b)
                    for (std::size_t k = 0; k < T; ++k) {
                        const std::size_t len = masked ? lengths[b] : S;
                        double m = -1e300, z = 0;
                        for (std::size_t s = 0; s < len; ++s) m = std::max(m, e(b, k, s));
                        for (std::size_t s = 0; s < len; ++s) z += std::exp(e(b, k, s) - m);
                        for (std::size_t s = 0; s < S; ++s) {
                            const double want = s < len ? std::exp(e(b, k, s) - m) / z : 0.0;
                            BOOST_TEST(alpha(b, k, s) == want, boost::test_tools::tolerance(1e-12));
                            if (s >= len) BOOST_TEST(alpha(b, k, s) == 0.0);  // exactly
                        }
                        for (std::size_t j = 0; j < DM; ++j) {
                            double c = 0;
                            for (std::size_t s = 0; s < len; ++s) c += std::exp(e(b, k, s) - m) / z * mem(b, s, j);
                            BOOST_TEST(std::abs(ctx(b, k, j) - c) < 1e-12);
                        }
                    }
            }
}

BOOST_AUTO_TEST_CASE(a_fully_masked_row_gives_zero_context_and_zero_gradients_never_nan) {
    for (auto score : all_scores)
        for (auto dt : {sg::dtype::f32, sg::dtype::f64}) BOOST_TEST_CONTEXT(nn::to_string(score) << " " << dt) {
                fixture f(score);
                f.ps.to(dt);
                f.data.to(dt);
                sg::tape t(dt);
                t.set_check_finite(true);  // throws numeric_error naming the node on NaN/Inf
                const auto o = f.run(t, false, true);
                const sg::expr loss = sg::sum(o.context * t.input(f.w_ctx)) + sg::sum(o.weights * t.input(f.w_alpha));
                t.backward(loss);
                const auto ctx = t.value(o.context), alpha = t.value(o.weights);
                const auto gm = f.memory.grad_as_double(), gq = f.queries.grad_as_double();
                for (std::size_t k = 0; k < T; ++k) {
                    for (std::size_t j = 0; j < DM; ++j) BOOST_TEST(ctx(2, k, j) == 0.0);
                    for (std::size_t s = 0; s < S; ++s) BOOST_TEST(alpha(2, k, s) == 0.0);
                    for (std::size_t i = 0; i < query_size(score); ++i) BOOST_TEST(gq(2, k, i) == 0.0);
                }
                for (std::size_t s = 0; s < S; ++s)
                    for (std::size_t j = 0; j < DM; ++j) {
                        BOOST_TEST(gm(2, s, j) == 0.0);              // the empty row
                        if (s >= 2) BOOST_TEST(gm(1, s, j) == 0.0);  // masked tail of row 1
                    }
                BOOST_TEST(std::isfinite(xt::sum(gm)()));
                // Row 1 still gets gradients at its valid positions, and its weights sum to 1.
                BOOST_TEST(xt::amax(xt::abs(gm))() > 0.0);
                BOOST_TEST(alpha(1, 0, 0) + alpha(1, 0, 1) == 1.0, boost::test_tools::tolerance(1e-6));
            }
}

// Inf or NaN in the padding changes nothing either: a weight of exactly 0 times Inf made the row's
// context and every gradient NaN.
BOOST_AUTO_TEST_CASE(non_finite_padding_changes_nothing) {
    for (auto score : all_scores)
        for (double pad : {std::numeric_limits<double>::infinity(), std::nan("")})
            for (bool batched : {false, true}) BOOST_TEST_CONTEXT(nn::to_string(score) << " pad " << pad) {
                    fixture f(score);
                    auto run = [&] {
                        f.ps.zero_grad();
                        f.data.zero_grad();
                        sg::tape t(sg::dtype::f64);
                        const auto o = f.run(t, batched, true);
                        t.backward(sg::sum(o.context * t.input(f.w_ctx)) + sg::sum(o.weights * t.input(f.w_alpha)));
                        return std::vector<xt::xarray<double>>{t.value(o.context), t.value(o.weights),
                                                               f.memory.grad_as_double(), f.queries.grad_as_double()};
                    };
                    const auto clean = run();
                    xt::xarray<double> mem = f.memory.value_as_double();
                    for (std::size_t r = 0; r < B; ++r)
                        for (std::size_t k = lengths[r]; k < S; ++k)
                            for (std::size_t j = 0; j < DM; ++j) mem(r, k, j) = pad;
                    f.memory.assign(mem);
                    const auto padded = run();
                    for (std::size_t i = 0; i < clean.size(); ++i) BOOST_TEST((padded[i] == clean[i]), "output " << i);
                }
}

BOOST_AUTO_TEST_CASE(step_by_step_and_all_steps_paths_agree_in_values_and_gradients) {
    for (auto score : all_scores)
        for (bool masked : {false, true}) BOOST_TEST_CONTEXT(nn::to_string(score) << (masked ? " masked" : "")) {
                fixture f(score);
                xt::xarray<double> vals[2], grads[2][2];
                std::vector<xt::xarray<double>> pgrads[2];
                for (int batched = 0; batched < 2; ++batched) {
                    sg::tape t(sg::dtype::f64);
                    const auto o = f.run(t, batched, masked);
                    vals[batched] = t.value(o.weights);
                    t.backward(sg::sum(o.context * t.input(f.w_ctx)) + sg::sum(o.weights * t.input(f.w_alpha)));
                    grads[batched][0] = f.memory.grad_as_double();
                    grads[batched][1] = f.queries.grad_as_double();
                    for (const auto& p : f.ps.parameters()) pgrads[batched].push_back(p.grad_as_double());
                    f.ps.zero_grad();
                    f.data.zero_grad();
                }
                BOOST_TEST(max_diff(vals[0], vals[1]) < 1e-14);
                BOOST_TEST(max_diff(grads[0][0], grads[1][0]) < 1e-13);
                BOOST_TEST(max_diff(grads[0][1], grads[1][1]) < 1e-13);
                for (std::size_t i = 0; i < pgrads[0].size(); ++i)
                    BOOST_TEST(max_diff(pgrads[0][i], pgrads[1][i]) < 1e-13);
                BOOST_TEST(xt::amax(xt::abs(grads[0][1]))() > 1e-3);  // gradients did reach the queries
            }
}

BOOST_AUTO_TEST_CASE(every_score_passes_gradcheck_with_masks_over_parameters_memory_and_queries) {
    for (auto score : all_scores)
        for (bool batched : {false, true})
            BOOST_TEST_CONTEXT(nn::to_string(score) << (batched ? " all steps" : " per step")) {
                fixture f(score);
                sg::parameter_store* stores[] = {&f.ps, &f.data};
                const auto report = sg::gradcheck(stores, [&](sg::tape& t) { return f.loss(t, batched, true); });
                BOOST_TEST(report.passed, report);
                BOOST_TEST(report.deterministic);
                BOOST_TEST(report.global_rel_err < 1e-6);
                BOOST_TEST(report.checked == f.ps.num_elements() + f.data.num_elements());
            }
}

BOOST_AUTO_TEST_CASE(memory_from_steps_stacks_batch_major) {
    sg::tape t(sg::dtype::f64);
    xt::xarray<double> a = {{1, 2}, {3, 4}}, b = {{5, 6}, {7, 8}};
    const sg::expr steps[] = {t.input(a), t.input(b)};
    const auto m = t.value(nn::memory_from_steps(steps));
    BOOST_TEST((m.shape() == std::vector<std::size_t>{2, 2, 2}));
    BOOST_TEST(m(0, 1, 0) == 5.0);  // row 0, step 1
    BOOST_TEST(m(1, 0, 1) == 4.0);  // row 1, step 0
}

BOOST_AUTO_TEST_CASE(weights_of_row_reads_either_path_as_steps_by_source_positions) {
    fixture f(nn::attention_score::general);
    sg::tape t(sg::dtype::f64);
    const auto m = f.att.prepare(t.param(f.memory), lengths);
    const sg::expr q = t.param(f.queries);
    const auto all = f.att.all_steps(m, q);
    std::vector<sg::expr> steps;
    for (std::size_t k = 0; k < T; ++k)
        steps.push_back(f.att(m, sg::reshape(sg::slice(q, 1, k, k + 1), {B, DQ})).weights);
    const auto w1 = nn::weights_of_row(t, all.weights, 1), w2 = nn::weights_of_row(t, steps, 1);
    BOOST_TEST((w1.shape() == std::vector<std::size_t>{T, S}));
    BOOST_TEST(max_diff(w1, w2) < 1e-14);
    BOOST_TEST(w1(1, 0) + w1(1, 1) == 1.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(w1(1, 3) == 0.0);
}

BOOST_AUTO_TEST_CASE(errors_name_the_module_the_shapes_and_the_expectation) {
    sg::parameter_store ps;
    auto message = [](auto&& f) {
        try {
            f();
        } catch (const sg::error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string dot = message(
        [&] { nn::attention(sg::parameter_scope(ps, "d"), nn::attention_score::dot, 3, 4); });
    BOOST_TEST(dot.find("nn::attention 'd' (dot)") != std::string::npos, dot);
    BOOST_TEST(dot.find("expected equal sizes") != std::string::npos, dot);
    // Dot-product scores have no parameter to take the module's name from: it is the scope's.
    for (const auto sc : {nn::attention_score::dot, nn::attention_score::scaled_dot}) {
        const nn::attention unnamed(sg::parameter_scope(ps, "m.a_dot"), sc, 4, 4);
        sg::tape t;
        const std::string memory = message([&] {
            unnamed.prepare(t.input(xt::xarray<double>(xt::zeros<double>({2, 3, 5}))));
        });
        BOOST_TEST(memory.find("nn::attention 'm.a_dot' (" + std::string(nn::to_string(sc)) +
                               "): memory [2, 3, 5] (expected [B, S, 4] with S >= 1)") != std::string::npos,
                   memory);
    }
    BOOST_CHECK_THROW(nn::attention_score_from_string("bilinear"), sg::value_error);
    BOOST_TEST((nn::attention_score_from_string("concat") == nn::attention_score::concat));

    nn::attention att(sg::parameter_scope(ps, "att"), nn::attention_score::general, 3, 5);
    sg::tape t;
    const sg::expr mem = t.constant(0.5, {2, 4, 5});
    const std::string bad_mem = message([&] { att.prepare(t.constant(0.5, {2, 4, 6})); });
    BOOST_TEST(bad_mem.find("memory [2, 4, 6] (expected [B, S, 5]") != std::string::npos, bad_mem);
    const std::size_t too_long[] = {5, 1};
    const std::string bad_len = message([&] { att.prepare(mem, too_long); });
    BOOST_TEST(bad_len.find("row 0 has length 5 (expected at most S = 4)") != std::string::npos, bad_len);
    const auto m = att.prepare(mem);
    const std::string bad_q = message([&] { att(m, t.constant(0.0, {2, 4})); });
    BOOST_TEST(bad_q.find("query [2, 4]") != std::string::npos, bad_q);
    BOOST_TEST(bad_q.find("expected [2, 3]") != std::string::npos, bad_q);
    BOOST_CHECK_THROW(att.all_steps(m, t.constant(0.0, {3, 2, 3})), sg::shape_error);
    // all_steps asked for "[B, T, 2, 3] with B = 2" (four dimensions) where [2, T, 3] is meant.
    const std::string bad_qs = message([&] { att.all_steps(m, t.constant(0.0, {2, 3})); });
    BOOST_TEST(bad_qs.find("nn::attention 'att' (general): query [2, 3] for memory [2, 4, 5] (expected [2, T, 3])") !=
                   std::string::npos,
               bad_qs);
    // scores, public too, checked nothing: a [B, Dq] query failed in reshape, naming neither the
    // module nor the expected shape.
    for (const sg::shape& q : {sg::shape{2, 3}, sg::shape{3, 1, 3}, sg::shape{2, 1, 4}}) {
        const std::string bad_s = message([&] { att.scores(m, t.constant(0.0, q)); });
        BOOST_TEST(bad_s.find("nn::attention 'att' (general): query " + q.str() +
                              " for memory [2, 4, 5] (expected "
                              "[2, T, 3])") != std::string::npos,
                   bad_s);
    }
    BOOST_TEST(att.scores(m, t.constant(0.0, {2, 6, 3})).shape() == (sg::shape{2, 6, 4}));
}

BOOST_AUTO_TEST_SUITE_END()
