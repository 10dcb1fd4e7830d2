// The tape and backward engine: handles, leaves, accumulation, deep graphs, errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;

BOOST_AUTO_TEST_SUITE(tape)

BOOST_AUTO_TEST_CASE(stale_expr_after_clear_throws_graph_error) {
    sg::tape t;
    auto x = t.constant(1.0, {2});
    t.clear();
    BOOST_CHECK_THROW(sg::tanh(x), sg::graph_error);
    BOOST_CHECK_THROW(t.value(x), sg::graph_error);
    BOOST_TEST(!x.valid());
    auto y = t.constant(2.0, {2});  // the same id on the cleared tape is a different expr
    BOOST_TEST(y.id() == x.id());
    BOOST_TEST(y.valid());
}

BOOST_AUTO_TEST_CASE(stale_expr_after_destruction_throws_graph_error) {
    sg::expr x;
    {
        sg::tape t;
        x = t.constant(1.0, {2});
    }
    sg::tape other;  // likely reuses the same slot; the generation still differs
    try {
        (void)x.shape();
        BOOST_FAIL("expected graph_error");
    } catch (const sg::graph_error& e) {
        BOOST_TEST(std::string(e.what()).find("cleared or destroyed") != std::string::npos);
    }
    BOOST_CHECK_THROW(sg::expr{}.owner(), sg::graph_error);
}

BOOST_AUTO_TEST_CASE(exprs_from_two_tapes_do_not_mix) {
    sg::tape a, b;
    auto x = a.constant(1.0, {2});
    auto y = b.constant(1.0, {2});
    BOOST_CHECK_THROW(x + y, sg::graph_error);
}

BOOST_AUTO_TEST_CASE(parameter_gradients_accumulate_over_uses_and_calls) {
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{2.0, -1.0});
    sg::tape t(sg::dtype::f64);
    // loss = sum(w*w) + sum(3*w): d/dw = 2w + 3 = (7, 1). The leaf is shared by both uses.
    auto loss = sg::sum(t.param(w) * t.param(w)) + sg::sum(t.param(w) * 3.0);
    BOOST_TEST(t.param(w).id() == t.param(w).id());
    t.backward(loss);
    BOOST_TEST(w.grad<double>()(0) == 7.0);
    BOOST_TEST(w.grad<double>()(1) == 1.0);
    t.backward(loss);  // a second backward adds again into the store
    BOOST_TEST(w.grad<double>()(0) == 14.0);
    ps.zero_grad();
    BOOST_TEST(w.grad<double>()(0) == 0.0);
}

BOOST_AUTO_TEST_CASE(float_tape_and_double_store_convert_both_ways) {
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{0.5});
    sg::tape t(sg::dtype::f32);
    auto loss = sg::sum(sg::square(t.param(w)));
    BOOST_TEST(t.item(loss) == 0.25);
    t.backward(loss);
    BOOST_TEST(w.grad<double>()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(frozen_parameter_gets_no_gradient) {
    sg::parameter_store ps(sg::dtype::f64);
    auto a = ps.add("a", xt::xarray<double>{1.0});
    auto b = ps.add("b", xt::xarray<double>{2.0});
    b.set_trainable(false);
    sg::tape t(sg::dtype::f64);
    t.backward(sg::sum(t.param(a) * t.param(b)));
    BOOST_TEST(a.grad<double>()(0) == 2.0);
    BOOST_TEST(b.grad<double>()(0) == 0.0);
}

BOOST_AUTO_TEST_CASE(input_gradients_are_kept_when_requested) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, 2.0, 3.0}, true);
    auto c = t.input(xt::xarray<double>{1.0, 1.0, 1.0});
    auto loss = sg::sum(x * x * c);
    t.backward(loss);
    auto g = t.grad(x);
    BOOST_TEST(g(0) == 2.0);
    BOOST_TEST(g(2) == 6.0);
    BOOST_TEST(!t.has_grad(c));
}

BOOST_AUTO_TEST_CASE(backward_from_non_scalar_needs_a_seed) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, 2.0}, true);
    auto y = x * 3.0;
    try {
        t.backward(y);
        BOOST_FAIL("expected graph_error");
    } catch (const sg::graph_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("mul_scalar") != std::string::npos);
        BOOST_TEST(m.find("[2]") != std::string::npos);
    }
    t.backward(y, xt::xarray<double>{1.0, -1.0});
    BOOST_TEST(t.grad(x)(0) == 3.0);
    BOOST_TEST(t.grad(x)(1) == -3.0);
    BOOST_CHECK_THROW(t.backward(y, xt::xarray<double>{1.0}), sg::shape_error);
}

// A float seed (an f32 model's output gradient) is taken as the same values in double would be, on
// either tape type, and refused for a wrong shape the same way.
BOOST_AUTO_TEST_CASE(a_float_seed_gives_the_gradient_of_the_same_seed_in_double) {
    const xt::xarray<float> fs{0.1f, -2.5f, 1e-3f};
    const xt::xarray<double> ds = xt::cast<double>(fs);
    for (const sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
        xt::xarray<double> g[2];
        for (int k = 0; k < 2; ++k) {
            sg::tape t(dt);
            auto x = t.input(xt::xarray<double>{1.0, 2.0, -1.5}, true);
            auto y = sg::tanh(x) * 3.0;
            if (k) t.backward(y, fs);
            else t.backward(y, ds);
            g[k] = t.grad(x);
            BOOST_CHECK_THROW(t.backward(y, xt::xarray<float>{1.0f}), sg::shape_error);
        }
        BOOST_TEST((g[0] == g[1]));
        const double expect = 3.0 * (1.0 - std::tanh(1.0) * std::tanh(1.0)) * 0.1f;
        BOOST_TEST(std::abs(g[1](0) - expect) < (dt == sg::dtype::f32 ? 1e-7 : 1e-15));
    }
}

BOOST_AUTO_TEST_CASE(chain_of_a_million_nodes_backpropagates_without_recursion) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{0.5}, true);
    auto h = x;
    const int n = 1000000;
    for (int i = 0; i < n; ++i) h = h * 1.0;  // d h / d x = 1 through a million nodes
    BOOST_TEST(t.size() == std::size_t(n + 1));
    t.backward(sg::sum(h));
    BOOST_TEST(t.grad(x)(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(only_nodes_leading_to_the_root_get_gradients) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0}, true);
    auto side = sg::exp(x);  // not on the path to the loss
    auto loss = sg::sum(x * 2.0);
    auto after = sg::tanh(x);  // created after the loss
    t.backward(loss);
    BOOST_TEST(!t.has_grad(side));
    BOOST_TEST(!t.has_grad(after));
    BOOST_TEST(t.grad(x)(0) == 2.0);
}

BOOST_AUTO_TEST_CASE(stop_gradient_blocks_the_path) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{3.0}, true);
    auto loss = sg::sum(x * sg::stop_gradient(x));  // d/dx = stop(x) = 3, not 2x = 6
    t.backward(loss);
    BOOST_TEST(t.grad(x)(0) == 3.0);
}

BOOST_AUTO_TEST_CASE(step_marks_follow_the_scope) {
    sg::tape t;
    auto x = t.constant(1.0, {1});
    sg::expr a, b;
    {
        sg::step_scope s(t, 4);
        a = sg::tanh(x);
    }
    b = sg::tanh(x);
    BOOST_TEST(t.node_at(a.id()).step == 4);
    BOOST_TEST(t.node_at(b.id()).step == -1);
}

// A step below -1 made nodes untimed (truncate_bptt(2) then returned full BPTT's gradient), and a
// state read from the step itself made every edge inside it a state edge: both refused, the
// scope's previous step kept.
BOOST_AUTO_TEST_CASE(step_scope_refuses_steps_below_minus_one_and_a_state_from_itself) {
    sg::tape t;
    const std::pair<int, int> bad[] = {{-5, -6}, {-2, -1}, {3, -2}, {-1, 0}, {2, 2}};
    for (const auto& b : bad) {
        const int s = b.first, from = b.second;  // not a structured binding: Clang 14 cannot capture one
        BOOST_TEST_CONTEXT("step " << s << ", state_from " << from) {
            seqgrad_test::expect_error<sg::value_error>([&] { sg::step_scope sc(t, s, from); },
                                                        "step_scope (tape::set_step): step " + std::to_string(s));
        }
        BOOST_TEST(t.step() == -1);
        BOOST_TEST(t.state_from() == -1);
    }
    sg::step_scope ok(t, 0, 1);  // a reverse-direction step reads the state of the one after
    BOOST_TEST(t.state_from() == 1);
}

BOOST_AUTO_TEST_CASE(check_finite_names_the_first_node_with_a_nan) {
    sg::tape t(sg::dtype::f64);
    t.set_check_finite(true);
    auto x = t.input(xt::xarray<double>{1.0, -1.0});
    auto y = sg::exp(x);
    try {
        (void)sg::log(x - 1.0);  // log(0) = -inf at index 0, log(-2) = NaN at index 1
        BOOST_FAIL("expected numeric_error");
    } catch (const sg::numeric_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("log(n") != std::string::npos);
        BOOST_TEST(m.find("Inf") != std::string::npos);
        BOOST_TEST(m.find("index 0") != std::string::npos);
    }
    BOOST_TEST(t.size() == 3u);  // the failed node was not kept
    (void)y;
}

BOOST_AUTO_TEST_CASE(describe_prints_op_inputs_and_parameter_names) {
    sg::parameter_store ps;
    auto w = ps.add("enc.w", sg::shape{2, 2});
    sg::tape t;
    auto x = t.constant(1.0, {1, 2});
    auto y = sg::matmul(x, t.param(w));
    BOOST_TEST(t.describe(y.id()) == "matmul(n0, enc.w, trans_a=0, trans_b=0)");
    BOOST_TEST(t.describe(sg::sum(y, 1).id()) == "sum_axis(n2, axis=1)");
    // operand: an input as an expr, and a clear error one past the inputs.
    BOOST_TEST(t.operand(y, 0).id() == x.id());
    BOOST_TEST(t.describe(t.operand(y, 1).id()) == "parameter enc.w");
    BOOST_CHECK_EXCEPTION(t.operand(y, 2), sg::value_error, [](const sg::value_error& e) {
        return std::string(e.what()) == "tape::operand: input 2 of a node with 2 inputs";
    });
}

BOOST_AUTO_TEST_CASE(clear_reuses_memory) {
    sg::tape t;
    auto run = [&] {
        auto h = t.constant(0.1, {1, 64});
        for (int i = 0; i < 1000; ++i) h = sg::tanh(h + 0.5);
        t.backward(sg::sum(h));
    };
    run();
    const auto reserved = t.bytes_reserved();
    for (int k = 0; k < 5; ++k) {
        t.clear();
        run();
    }
    BOOST_TEST(t.bytes_reserved() == reserved);
}

BOOST_AUTO_TEST_SUITE_END()
