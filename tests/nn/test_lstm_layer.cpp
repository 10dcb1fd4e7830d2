#include <boost/test/unit_test.hpp>

// The fused LSTM layer (ops/recurrent.hpp, nn/lstm_layer.hpp) against its composed twin: the
// lstm_cell of nn/cells.hpp unrolled step by step. Values and gradients agree to 1e-10 in double.
#include <cmath>
#include <random>
#include <string>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include <seqgrad/core/blas.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
namespace nn = seqgrad::nn;

namespace {

xt::xarray<double> uniform(const sg::shape& s, std::mt19937_64& rng, double scale = 1.0) {
    std::uniform_real_distribution<double> u(-scale, scale);
    xt::xarray<double> v = xt::zeros<double>(s.to_vector());
    for (auto& x : v) x = u(rng);
    return v;
}

enum class path { composed, cell, pointwise, fused };

// One model: an lstm_cell over T steps of a batch of B, inputs x [T*B, I] and the initial state
// as parameters, and a loss that weighs every h_t and the final c with fixed random weights.
struct fixture {
    std::size_t T, B, I, H;
    bool given_state;
    sg::parameter_store ps{sg::dtype::f64};
    nn::lstm_cell cell;
    sg::parameter x, h0, c0;
    std::vector<xt::xarray<double>> wh;
    xt::xarray<double> wc;

    fixture(std::size_t t, std::size_t b, std::size_t i, std::size_t h, bool given, std::uint64_t seed)
        : T(t), B(b), I(i), H(h), given_state(given), cell(make_cell(ps, i, h, seed)) {
        std::mt19937_64 rng(seed + 1);
        x = ps.add("x", uniform({T * B, I}, rng));
        if (given_state) {
            h0 = ps.add("h0", uniform({B, H}, rng));
            c0 = ps.add("c0", uniform({B, H}, rng, 2.0));
        }
        for (std::size_t k = 0; k < T; ++k) wh.push_back(uniform({B, H}, rng));
        wc = uniform({B, H}, rng);
    }
    static nn::lstm_cell make_cell(sg::parameter_store& ps, std::size_t i, std::size_t h, std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        nn::lstm_cell c(sg::parameter_scope(ps, "lstm"), i, h, rng);
        for (const sg::parameter* p : {&c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh}) p->assign(uniform(p->shape(), rng, 0.8));
        return c;
    }

    struct outputs {
        std::vector<sg::expr> hs;
        sg::expr c_last, loss;
    };

    outputs build(sg::tape& t, path p) const {
        nn::lstm_state s0 = given_state ? nn::lstm_state{t.param(h0), t.param(c0)} : cell.initial_state(t, B);
        const sg::expr xs = t.param(x);
        outputs out;
        if (p == path::fused) {
            nn::detail::lstm_layer layer(cell);
            nn::detail::lstm_sequence seq = given_state ? layer(xs, s0) : layer(xs, B);
            out.hs = seq.hs();
            out.c_last = seq.final_state().c;
        } else if (p == path::cell) {
            nn::lstm_state s = s0;
            for (std::size_t k = 0; k < T; ++k) {
                sg::step_scope scope(t, static_cast<int>(k), static_cast<int>(k) - 1);
                s = cell(sg::slice(xs, 0, k * B, (k + 1) * B), s);
                out.hs.push_back(s.h);
            }
            out.c_last = s.c;
        } else if (p == path::composed) {
            // PyTorch's equations from primitive ops only: the reference every fused form equals.
            nn::lstm_state s = s0;
            for (std::size_t k = 0; k < T; ++k) {
                sg::step_scope scope(t, static_cast<int>(k), static_cast<int>(k) - 1);
                const sg::expr x = sg::slice(xs, 0, k * B, (k + 1) * B);
                const auto q = sg::split(sg::matmul(x, sg::T(cell.w_ih)) + cell.b_ih +
                                             sg::matmul(s.h, sg::T(cell.w_hh)) + cell.b_hh,
                                         4, -1);
                const sg::expr c = sg::sigmoid(q[1]) * s.c + sg::sigmoid(q[0]) * sg::tanh(q[2]);
                s = {sg::sigmoid(q[3]) * sg::tanh(c), c};
                out.hs.push_back(s.h);
            }
            out.c_last = s.c;
        } else {
            // matmul_add for the projections and lstm_pointwise for the cell, per step.
            const sg::expr bias = t.param(cell.b_ih) + t.param(cell.b_hh);
            const sg::expr proj = sg::matmul_add(bias, xs, sg::T(cell.w_ih));
            nn::lstm_state s = s0;
            for (std::size_t k = 0; k < T; ++k) {
                const sg::expr gates = sg::matmul_add(sg::slice(proj, 0, k * B, (k + 1) * B), s.h, sg::T(cell.w_hh));
                const sg::expr hc = sg::lstm_pointwise(gates, s.c);
                s = {sg::reshape(sg::slice(hc, 0, 0, 1), {B, H}), sg::reshape(sg::slice(hc, 0, 1, 2), {B, H})};
                out.hs.push_back(s.h);
            }
            out.c_last = s.c;
        }
        sg::expr loss = sg::sum(out.c_last * t.input(wc));
        for (std::size_t k = 0; k < T; ++k) loss = loss + sg::sum(out.hs[k] * t.input(wh[k]));
        out.loss = loss;
        return out;
    }

    struct result {
        std::vector<xt::xarray<double>> hs, grads;
        xt::xarray<double> c_last;
        double loss = 0;
    };
    result evaluate(path p, sg::dtype dt = sg::dtype::f64, const sg::backward_plan& plan = {}) {
        ps.zero_grad();
        sg::tape t(dt);
        outputs o = build(t, p);
        t.backward(o.loss, plan);
        result r;
        for (auto& h : o.hs) r.hs.push_back(t.value(h));
        r.c_last = t.value(o.c_last);
        r.loss = t.item(o.loss);
        for (auto& q : ps.parameters()) r.grads.push_back(q.grad_as_double());
        return r;
    }
};

void expect_equal(fixture& f, const fixture::result& a, const fixture::result& b, double tol) {
    BOOST_TEST(std::abs(a.loss - b.loss) <= tol * std::max(1.0, std::abs(b.loss)));
    for (std::size_t k = 0; k < a.hs.size(); ++k) BOOST_TEST(max_diff(a.hs[k], b.hs[k]) <= tol, "h at step " << k);
    BOOST_TEST(max_diff(a.c_last, b.c_last) <= tol);
    const auto params = f.ps.parameters();
    for (std::size_t j = 0; j < params.size(); ++j) {
        const double scale = std::max(1.0, double(xt::amax(xt::abs(b.grads[j]))()));
        BOOST_TEST(max_diff(a.grads[j], b.grads[j]) <= tol * scale, "gradient of " << params[j].name());
    }
}

struct config {
    std::size_t T, B, I, H;
    bool given_state;
};
const config configs[] = {{5, 1, 3, 4, false}, {4, 3, 5, 2, true}, {6, 2, 4, 3, false}, {3, 1, 2, 5, true}};
// Batch-1 widths that reach every block size of the GEMV kernels (64 and 8 lanes in double).
const config wide_configs[] = {{3, 1, 4, 70, true}, {2, 1, 3, 80, false}};

}  // namespace

BOOST_AUTO_TEST_SUITE(lstm_layer)

BOOST_AUTO_TEST_CASE(fused_equals_composed_cell_in_double) {
    std::uint64_t seed = 7;
    for (const config& c : configs) {
        BOOST_TEST_CONTEXT("T " << c.T << " B " << c.B << " I " << c.I << " H " << c.H << " state " << c.given_state) {
            fixture f(c.T, c.B, c.I, c.H, c.given_state, seed++);
            const auto ref = f.evaluate(path::composed);
            expect_equal(f, f.evaluate(path::fused), ref, 1e-10);
            expect_equal(f, f.evaluate(path::pointwise), ref, 1e-10);
            expect_equal(f, f.evaluate(path::cell), ref, 1e-10);
        }
    }
}

BOOST_AUTO_TEST_CASE(fused_equals_composed_cell_at_batch_1_wide) {
    std::uint64_t seed = 70;
    for (const config& c : wide_configs) {
        BOOST_TEST_CONTEXT("T " << c.T << " H " << c.H) {
            fixture f(c.T, c.B, c.I, c.H, c.given_state, seed++);
            expect_equal(f, f.evaluate(path::fused), f.evaluate(path::composed), 1e-10);
        }
    }
}

BOOST_AUTO_TEST_CASE(zero_initial_h_or_c_alone) {
    // At B >= 8 the layer runs as one node (lstm_run) whose first product and weight-gradient
    // term are left out where the initial h is zero; a zero c alone, or a zero h with a non-zero
    // c, must give the composed cell's values.
    for (const bool zero_h : {true, false}) {
        BOOST_TEST_CONTEXT("zero " << (zero_h ? "h0" : "c0")) {
            fixture f(4, 8, 3, 8, true, 91);
            (zero_h ? f.h0 : f.c0).assign(xt::xarray<double>(xt::zeros<double>({std::size_t(8), std::size_t(8)})));
            expect_equal(f, f.evaluate(path::fused), f.evaluate(path::composed), 1e-10);
        }
    }
}

BOOST_AUTO_TEST_CASE(fused_equals_composed_under_truncated_bptt) {
    // The step marks put each lstm_step where the composed cell's nodes are: truncation cuts the
    // same state edges.
    const sg::backward_plan plans[] = {sg::truncate_bptt(2), sg::truncate_bptt(2, 3),
                                       sg::truncate_bptt(3) | sg::clip_state_gradient(0.05)};
    for (const auto& plan : plans) {
        fixture f(7, 2, 3, 4, true, 31);
        const auto ref = f.evaluate(path::composed, sg::dtype::f64, plan);
        expect_equal(f, f.evaluate(path::fused, sg::dtype::f64, plan), ref, 1e-10);
        // Truncation changes the gradients: the comparison above is not vacuous.
        const auto full = f.evaluate(path::fused);
        BOOST_TEST(max_diff(full.grads[1], ref.grads[1]) > 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(fused_layer_passes_gradcheck) {
    std::uint64_t seed = 21;
    for (const config& c : configs) {
        BOOST_TEST_CONTEXT("T " << c.T << " B " << c.B << " H " << c.H) {
            fixture f(c.T, c.B, c.I, c.H, c.given_state, seed++);
            auto report = sg::gradcheck(f.ps, [&](sg::tape& t) { return f.build(t, path::fused).loss; });
            BOOST_TEST(report.passed, "" << report);
            BOOST_TEST(report.deterministic);
        }
    }
}

BOOST_AUTO_TEST_CASE(float_layer_is_close_to_double) {
    // Float uses the vectorised exp/tanh of ops/recurrent.cpp: close to the double path, not equal.
    // Batch 4, and batch 1 at a width that reaches every block of the float GEMV kernels.
    for (const config& c : {config{8, 4, 6, 16, true}, config{4, 1, 5, 150, true}}) {
        BOOST_TEST_CONTEXT("B " << c.B << " H " << c.H) {
            fixture f(c.T, c.B, c.I, c.H, c.given_state, 99);
            const auto ref = f.evaluate(path::composed);
            const auto got = f.evaluate(path::fused, sg::dtype::f32);
            expect_equal(f, got, ref, 2e-5);
            expect_equal(f, got, f.evaluate(path::composed, sg::dtype::f32), 2e-5);
        }
    }
}

// At B > 1 the steps' products read w_hh packed once (lstm_pack: at H 8 one panel of floats
// forward, at H 12 a panel and a half one, at H 16 panels for backward too); with the
// small-product kernels off the layer multiplies by w_hh as before: the same values and gradients
// either way. lstm_step gives the same values and gradients from w_hh, its transpose and its
// packed form, and a w_hh^T that would need a gradient is refused by name.
BOOST_AUTO_TEST_CASE(transposed_weight_for_the_forward_products) {
    for (const std::size_t H : {6u, 8u, 12u, 16u}) {
        fixture f(5, 3, 4, H, true, 8);
        const bool before = sg::detail::small_gemm_kernels();
        sg::detail::set_small_gemm_kernels(false);
        const auto plain = f.evaluate(path::fused);
        sg::detail::set_small_gemm_kernels(true);
        const auto own = f.evaluate(path::fused);
        sg::detail::set_small_gemm_kernels(before);
        expect_equal(f, own, plain, 1e-13);
        for (const auto dt : {sg::dtype::f32, sg::dtype::f64})
            for (const std::size_t B : {1u, 3u}) {
                // Values and the gradients of x, the state and w_hh of one step from each form.
                const auto step = [&](int form) {
                    sg::tape t(dt);
                    const sg::expr w = t.param(f.cell.w_hh);
                    const sg::expr x =
                        t.input(xt::xarray<double>(xt::ones<double>({std::size_t(2 * B), std::size_t(4 * H)}) * 0.1),
                                true);
                    const sg::expr s = t.input(xt::xarray<double>(xt::ones<double>({std::size_t(2), B, H}) * 0.3),
                                               true);
                    const sg::expr y = form == 0   ? sg::lstm_step(x, s, w, B)
                                       : form == 1 ? sg::lstm_step(x, s, w, sg::stop_gradient(sg::transpose(w)), B)
                                                   : sg::lstm_step(x, s, w, sg::lstm_pack(w), B);
                    t.set_accumulate_into_parameters(false);
                    t.backward(sg::sum(y * y));
                    return std::vector<xt::xarray<double>>{t.value(y), t.grad(x), t.grad(s), t.param_grad(f.cell.w_hh)};
                };
                const auto ref = step(0), tr = step(1);
                for (std::size_t j = 0; j < ref.size(); ++j) BOOST_TEST(xt::amax(xt::abs(tr[j] - ref[j]))() < 1e-5);
                if (H % 4) {
                    sg::tape t(dt);
                    BOOST_CHECK_THROW(sg::lstm_pack(t.param(f.cell.w_hh)), sg::shape_error);
                    continue;
                }
                // The same sums at B > 1 (the own kernel either way); at B = 1 the unpacked forms
                // run a GEMV forward, which sums in another order.
                const auto packed = step(2);
                for (std::size_t j = 0; j < ref.size(); ++j)
                    BOOST_TEST(xt::amax(xt::abs(packed[j] - tr[j]))() <= (B > 1 ? 0.0 : 1e-5),
                               "H " << H << " B " << B << " output " << j);
            }
    }
    {  // lstm_pack's shape from anything else would be read as a transpose: refused by name
        sg::tape t(sg::dtype::f32);
        const sg::expr w = t.input(xt::xarray<double>(xt::ones<double>({64, 16})));
        const sg::expr x = t.input(xt::xarray<double>(xt::zeros<double>({3, 64}))), s = t.constant(0.0, {2, 3, 16});
        BOOST_CHECK_EXCEPTION(sg::lstm_step(x, s, w, t.constant(0.0, {2, 16, 64}), 0), sg::shape_error,
                              [](const sg::shape_error& e) {
                                  return std::string(e.what()).find(
                                             "lstm_step: w_hh^T [2, 16, 64] is not lstm_pack's "
                                             "output") != std::string::npos;
                              });
    }
    fixture f(5, 3, 4, 6, true, 8);
    sg::tape t(sg::dtype::f64);
    const sg::expr w = t.param(f.cell.w_hh);
    const sg::expr x = t.input(xt::xarray<double>(xt::zeros<double>({3, 24}))), s = t.constant(0.0, {2, 3, 6});
    const sg::expr y = sg::lstm_step(x, s, w, sg::transpose(w), 0);
    BOOST_CHECK_EXCEPTION(t.backward(sg::sum(y)), sg::graph_error, [](const sg::graph_error& e) {
        return std::string(e.what()).find("lstm_step: w_hh^T [6, 24]") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(one_node_per_step_marked_with_its_step) {
    fixture f(7, 2, 3, 4, false, 3);
    sg::tape t(sg::dtype::f64);
    nn::detail::lstm_layer layer(f.cell);
    const auto seq = layer(t.param(f.x), 2, 10);
    BOOST_TEST(seq.steps() == 7u);
    std::size_t ops = 0, steps = 0;
    for (std::uint32_t id = 0; id < t.size(); ++id) {
        const auto& n = t.node_at(id);
        if (!n.op) continue;
        ++ops;
        if (n.op->name == "lstm_step") BOOST_TEST(n.step == 10 + static_cast<int>(steps++));
    }
    BOOST_TEST(steps == 7u);
    // Bias add, projection GEMM and, at B > 1, w_hh^T packed once (lstm_pack).
    BOOST_TEST(ops == 7u + (sg::detail::small_gemm_kernels() ? 3u : 2u));
    BOOST_TEST(seq.hidden_all().shape() == (sg::shape{14, 4}));
    BOOST_TEST(t.node_at(seq.h(3).id()).step == 13);
}

BOOST_AUTO_TEST_CASE(hidden_all_stacks_every_h) {
    fixture f(4, 3, 2, 5, true, 11);
    sg::tape t(sg::dtype::f64);
    nn::detail::lstm_layer layer(f.cell);
    const auto seq = layer(t.param(f.x), nn::lstm_state{t.param(f.h0), t.param(f.c0)});
    const auto all = t.value(seq.hidden_all());
    for (std::size_t k = 0; k < 4; ++k)
        BOOST_TEST(max_diff(xt::view(all, xt::range(k * 3, (k + 1) * 3), xt::all()), t.value(seq.h(k))) == 0.0);
}

BOOST_AUTO_TEST_CASE(embedded_inputs_equal_gathered_inputs) {
    // Both routes of lstm_layer::embedded: V < T*B projects the table, V >= T*B the gathered rows.
    for (const std::size_t V : {3u, 40u})
        for (const bool given : {false, true}) {
            BOOST_TEST_CONTEXT("V " << V << " given state " << given) {
                fixture f(5, 2, 3, 4, given, 17);
                std::mt19937_64 rng(V);
                const sg::parameter table = f.ps.add("table", uniform({V, 3}, rng));
                const auto weights = uniform({10, 4}, rng);
                std::vector<int> ids(10);
                for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = static_cast<int>((k * 7 + 1) % V);
                auto run = [&](bool embedded) {
                    f.ps.zero_grad();
                    sg::tape t(sg::dtype::f64);
                    nn::detail::lstm_layer layer(f.cell);
                    const sg::expr tab = t.param(table);
                    const nn::lstm_state s0{given ? t.param(f.h0) : sg::expr(), given ? t.param(f.c0) : sg::expr()};
                    nn::detail::lstm_sequence seq;
                    if (embedded) seq = given ? layer.embedded(tab, ids, s0) : layer.embedded(tab, ids, 2);
                    else seq = given ? layer(sg::gather_rows(tab, ids), s0) : layer(sg::gather_rows(tab, ids), 2);
                    const sg::expr all = seq.hidden_all();
                    t.backward(sg::sum(all * t.input(weights)) + sg::sum(seq.final_state().c));
                    std::vector<xt::xarray<double>> out{t.value(all)};
                    for (auto& q : f.ps.parameters()) out.push_back(q.grad_as_double());
                    return out;
                };
                const auto ref = run(false), got = run(true);
                for (std::size_t j = 0; j < ref.size(); ++j)
                    BOOST_TEST(max_diff(got[j], ref[j]) <= 1e-10, "entry " << j);
            }
        }
}

BOOST_AUTO_TEST_CASE(bad_shapes_name_the_layer_and_the_op) {
    fixture f(2, 2, 3, 4, false, 5);
    sg::tape t(sg::dtype::f64);
    nn::detail::lstm_layer layer(f.cell);
    auto message = [](auto&& fn) {
        try {
            fn();
        } catch (const sg::shape_error& e) {
            return std::string(e.what());
        }
        return std::string("no shape_error");
    };
    const std::string m1 = message([&] { layer(t.param(f.x), 3); });  // 4 rows are not T*3
    BOOST_TEST(m1.find("nn::lstm_cell 'lstm' (fused layer)") != std::string::npos, m1);
    BOOST_TEST(m1.find("[4, 3]") != std::string::npos, m1);
    const std::string m2 = message([&] {
        sg::lstm_step(t.constant(0, {4, 16}), t.constant(0, {2, 2, 4}), t.constant(0, {16, 5}), 0);
    });
    BOOST_TEST(m2.find("lstm_step") != std::string::npos, m2);
    BOOST_TEST(m2.find("[16, 5]") != std::string::npos, m2);
    const std::string m3 = message([&] {
        sg::lstm_step(t.constant(0, {4, 16}), t.constant(0, {2, 2, 4}), t.constant(0, {16, 4}), 3);
    });
    BOOST_TEST(m3.find("rows [3, 5)") != std::string::npos, m3);
    const std::string m4 = message([&] { sg::lstm_pointwise(t.constant(0, {2, 12}), t.constant(0, {2, 4})); });
    BOOST_TEST(m4.find("lstm_pointwise") != std::string::npos, m4);
    const std::string m5 = message([&] {
        sg::matmul_add(t.constant(0, {2, 3}), t.constant(0, {3, 4}), t.constant(0, {4, 5}));
    });
    BOOST_TEST(m5.find("matmul_add") != std::string::npos, m5);
    // No ids from a given state: refused as from a batch size and as x [0, I] is (it returned a
    // sequence of 0 steps).
    const nn::lstm_state s0 = f.cell.initial_state(t, 2);
    const sg::expr table = t.input(xt::xarray<double>(xt::zeros<double>({5, 3})));
    const std::string m6 = message([&] { layer.embedded(table, std::span<const int>(), s0); });
    BOOST_TEST(m6.find("0 ids with batch 2") != std::string::npos, m6);
    // An id past the table: named against the user's table whichever route runs (with fewer rows than
    // ids it was gather_rows over the projection [V, 16], a tensor the user never made).
    for (std::size_t rows : {0u, 1u, 5u}) {
        const sg::expr tab = t.input(xt::xarray<double>(xt::zeros<double>({rows, std::size_t{3}})));
        std::string m = "no value_error";
        try {
            layer.embedded(tab, std::vector<int>{0, 1, 4, 5}, 2);
        } catch (const sg::value_error& e) {
            m = e.what();
        }
        BOOST_TEST(m.find("nn::lstm_cell 'lstm' (fused layer): id " + std::to_string(rows == 5 ? 5 : rows) +
                          " at position " + std::to_string(rows == 5 ? 3 : rows) +
                          " is out of range for the embedding table [" + std::to_string(rows) + ", 3]") !=
                       std::string::npos,
                   m);
    }
    const std::string m7 = message([&] { layer(t.input(xt::xarray<double>(xt::zeros<double>({0, 3}))), s0); });
    BOOST_TEST(m7.find("input x [0, 3] with batch 2") != std::string::npos, m7);
    // Projections of no steps: refused where they are given, as x [0, I] is, not a sequence of 0
    // steps whose hidden_all() and final_state() then threw "no steps".
    const std::string m8 = message([&] { layer.run(t.constant(0, {0, 16}), t.constant(0, {2, 2, 4})); });
    BOOST_TEST(m8 ==
               "nn::lstm_cell 'lstm' (fused layer): projections [0, 16], state [2, 2, 4] (expected projections "
               "[T*B, 16] with T >= 1 and a state [2, B, 4] or a step record [6, B, 4])");
}

BOOST_AUTO_TEST_SUITE_END()
