// An op registered from user code, outside the library, then used and gradient-checked like a
// built-in one: softplus(x) = log(1 + exp(x)), d/dx = sigmoid(x).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <sstream>
#include <type_traits>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

SEQGRAD_REGISTER_OP(user_softplus) = sg::op_builder("user_softplus")
                                         .arity(1)
                                         .shape(sg::same_shape)
                                         .saves(sg::saves::inputs)
                                         .forward([](auto& c) {
                                             auto x = c.in(0);
                                             auto y = c.out();
                                             for (std::size_t i = 0; i < y.size(); ++i)
                                                 y[i] = std::log1p(std::exp(x[i]));
                                         })
                                         .backward([](auto& c) {
                                             auto x = c.in(0);
                                             auto gy = c.grad_out();
                                             c.emit(0, [&](std::size_t i) { return gy[i] / (1 + std::exp(-x[i])); });
                                         })
                                         .sample({{3, 2}});

BOOST_AUTO_TEST_SUITE(user_op)

BOOST_AUTO_TEST_CASE(registered_from_outside_and_gradient_checked) {
    BOOST_TEST(&sg::find_op("user_softplus") == &user_softplus);
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{{0.3, -1.2}, {2.0, 0.1}});
    auto x = ps.add("x", xt::xarray<double>{{1.0, -0.5}});
    auto report = sg::gradcheck(ps, [&](sg::tape& t) {
        auto h = sg::apply(user_softplus, {sg::matmul(t.param(x), t.param(w))});
        return sg::sum(sg::square(h));
    });
    BOOST_TEST(report.passed, "" << report);
    BOOST_TEST(report.checked == 6u);
    sg::tape t(sg::dtype::f64);
    auto y = sg::apply("user_softplus", std::vector<sg::expr>{t.input(xt::xarray<double>{0.0})});
    BOOST_TEST(std::abs(t.item(y) - std::log(2.0)) < 1e-15);
}

BOOST_AUTO_TEST_CASE(gradcheck_detects_a_wrong_gradient) {
    // A deliberately wrong backward (factor 2) must fail the check and be named in the report.
    static const sg::op_def& bad = sg::register_op(sg::op_builder("user_bad_square")
                                                       .shape(sg::same_shape)
                                                       .forward([](auto& c) {
                                                           auto x = c.in(0);
                                                           auto y = c.out();
                                                           for (std::size_t i = 0; i < y.size(); ++i)
                                                               y[i] = x[i] * x[i];
                                                       })
                                                       .backward([](auto& c) {
                                                           auto x = c.in(0);
                                                           auto gy = c.grad_out();
                                                           c.emit(0, [&](std::size_t i) { return 4 * x[i] * gy[i]; });
                                                       })
                                                       .sample({{2}}));
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", xt::xarray<double>{0.5, -1.0});
    auto report = sg::gradcheck(ps, [&](sg::tape& t) { return sg::sum(sg::apply(bad, {t.param(p)})); });
    BOOST_TEST(!report.passed);
    BOOST_TEST(report.failed == 2u);
    BOOST_TEST_REQUIRE(!report.worst.empty());
    BOOST_TEST(report.worst[0].tensor == "p");
    BOOST_TEST(std::abs(report.worst[0].analytic - 2 * report.worst[0].numeric) < 1e-6);
    BOOST_TEST(report.worst.size() == 2u);  // the failed entries only
    for (const auto& e : report.worst) BOOST_TEST(!e.passed);
    std::ostringstream os;
    os << report;
    BOOST_TEST(os.str().find("FAIL") != std::string::npos);

    // The same wrong gradient of a loss scaled by 1e-6: every gradient is below atol, so each entry
    // passed by atol alone and the report said PASS. Inconclusive is not a pass; the right gradient
    // at that scale agrees as a whole and passes.
    for (const auto* op : {&bad, &sg::find_op("square")}) {
        const auto r = sg::gradcheck(ps, [&](sg::tape& t) {
            return sg::mul_scalar(sg::sum(sg::apply(*op, {t.param(p)})), 1e-6);
        });
        BOOST_TEST(r.failed == 0u);
        BOOST_TEST(r.inconclusive == (op == &bad), op->name);
        BOOST_TEST(r.passed == (op == &bad ? false : true), op->name);
        std::ostringstream o;
        o << r;
        BOOST_TEST((o.str().find("INCONCLUSIVE") != std::string::npos) == (op == &bad), o.str());
    }
}

// x +- 1e-6 rounds from |x| ~ 1e10 (to x itself at 1e12: a numeric gradient of 0 against a right 1):
// the step grows with |x| and the difference is divided by the step taken.
BOOST_AUTO_TEST_CASE(gradcheck_steps_past_the_rounding_of_large_entries) {
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", xt::xarray<double>{1.5 * 0x1p33, 1e12, -3e7});
    const auto r = sg::gradcheck(ps, [&](sg::tape& t) { return sg::sum(t.param(p)); });
    BOOST_TEST(r.passed, "" << r);
    BOOST_TEST(r.max_abs_err < 1e-5);
}

BOOST_AUTO_TEST_CASE(a_nan_gradient_shows_in_the_reports_maxima) {
    // Its maxima read 0 (std::max keeps its first argument against a NaN): "max abs 0 ... FAIL".
    static const sg::op_def& nan_grad = sg::register_op(
        sg::op_builder("user_nan_gradient")
            .shape(sg::same_shape)
            .forward([](auto& c) {
                for (std::size_t i = 0; i < c.out().size(); ++i) c.out()[i] = 2 * c.in(0)[i];
            })
            .backward([](auto& c) {
                auto gy = c.grad_out();
                c.emit(0, [&](std::size_t i) { return i == 1 ? std::nan("") : 2 * gy[i]; });
            })
            .sample({{3}}));
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", xt::xarray<double>{0.5, 1.0, -1.0});
    auto r = sg::gradcheck(ps, [&](sg::tape& t) { return sg::sum(sg::apply(nan_grad, {t.param(p)})); });
    BOOST_TEST(!r.passed);
    BOOST_TEST(r.failed == 1u);
    BOOST_TEST(std::isnan(r.max_abs_err));
    BOOST_TEST(std::isnan(r.max_rel_err));
    BOOST_TEST_REQUIRE(r.tensors.size() == 1u);
    BOOST_TEST(std::isnan(r.tensors[0].max_abs_err));
    BOOST_TEST_REQUIRE(r.worst.size() == 1u);
    BOOST_TEST(std::isnan(r.worst[0].analytic));
    BOOST_TEST(std::isnan(sg::gradcheck_op(nan_grad).max_abs_err));
}

BOOST_AUTO_TEST_CASE(gradcheck_op_fails_a_backward_reading_what_saves_leaves_out) {
    // x^2 whose backward reads x: declared saves::output it passed the check (its inputs were
    // leaves, never released) and crashed in a model, where x was released before backward.
    auto square = [](sg::saves declared, const char* name) {
        return sg::op_builder(name)
            .shape(sg::same_shape)
            .saves(declared)
            .forward([](auto& c) {
                for (std::size_t i = 0; i < c.out().size(); ++i) c.out()[i] = c.in(0)[i] * c.in(0)[i];
            })
            .backward([](auto& c) {
                auto x = c.in(0);
                auto gy = c.grad_out();
                c.emit(0, [&](std::size_t i) { return 2 * x[i] * gy[i]; });
            })
            .sample({{4, 3}});
    };
    static const sg::op_def& wrong = sg::register_op(square(sg::saves::output, "user_square_saves_output"));
    static const sg::op_def& right = sg::register_op(square(sg::saves::inputs, "user_square_saves_inputs"));
    BOOST_TEST(!sg::gradcheck_op(wrong).passed);
    BOOST_TEST(sg::gradcheck_op(right).passed);
}

BOOST_AUTO_TEST_CASE(gradcheck_op_checks_the_float_kernels_against_the_double_ones) {
    // gradcheck differentiates in double: a float backward off by 1.5x (what f32 models train
    // with) passed; now compared with the double kernel's gradient and named.
    static const sg::op_def& off = sg::register_op(sg::op_builder("user_square_float_off")
                                                       .shape(sg::same_shape)
                                                       .forward([](auto& c) {
                                                           for (std::size_t i = 0; i < c.out().size(); ++i)
                                                               c.out()[i] = c.in(0)[i] * c.in(0)[i];
                                                       })
                                                       .backward([](auto& c) {
                                                           auto x = c.in(0);
                                                           auto gy = c.grad_out();
                                                           using T = std::remove_cvref_t<decltype(gy[0])>;
                                                           const T k = std::is_same_v<T, float> ? 3 : 2;
                                                           c.emit(0, [&](std::size_t i) { return k * x[i] * gy[i]; });
                                                       })
                                                       .sample({{3}}));
    const auto r = sg::gradcheck_op(off);
    BOOST_TEST(!r.passed);
    BOOST_TEST(r.how.find("float kernel: gradient of input 0 differs") != std::string::npos, r.how);
    BOOST_TEST(sg::gradcheck_op(user_softplus).passed);
}

BOOST_AUTO_TEST_CASE(a_passing_report_lists_the_largest_errors) {
    // relu(p) * c: entries with p < 0 have gradient 0 both ways (error exactly 0) and are left out;
    // the rest come largest absolute error first.
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("p", xt::xarray<double>{-0.5, 0.3, -1.0, 0.7, 1.2, -0.2, 0.9});
    auto q = ps.add("q", xt::xarray<double>{0.4, -0.6, 0.2});
    sg::gradcheck_options o;
    o.worst = 4;
    auto report = sg::gradcheck(
        ps, [&](sg::tape& t) { return sg::sum(sg::square(sg::relu(t.param(p)))) + sg::sum(sg::tanh(t.param(q))); }, o);
    BOOST_TEST_REQUIRE(report.passed, "" << report);
    BOOST_TEST_REQUIRE(report.worst.size() == 4u);
    BOOST_TEST(report.worst[0].abs_err == report.max_abs_err);
    for (std::size_t i = 0; i < report.worst.size(); ++i) {
        BOOST_TEST(report.worst[i].abs_err > 0.0);
        if (i) BOOST_TEST(report.worst[i].abs_err <= report.worst[i - 1].abs_err);
        BOOST_TEST(!(report.worst[i].tensor == "p" && report.worst[i].analytic == 0.0));
    }
    std::ostringstream os;
    os << report;
    BOOST_TEST(os.str().find("largest errors") != std::string::npos, os.str());
    BOOST_TEST(os.str().find("FAIL") == std::string::npos, os.str());
}

BOOST_AUTO_TEST_CASE(gradcheck_restores_float_store_exactly) {
    sg::parameter_store ps(sg::dtype::f32);
    auto p = ps.add("p", xt::xarray<double>{0.1, 0.2, 0.3});
    p.grad<float>() = xt::xarray<float>{7, 8, 9};
    const xt::xarray<float> before = p.value<float>();
    auto report = sg::gradcheck(ps, [&](sg::tape& t) { return sg::sum(sg::tanh(t.param(p))); });
    BOOST_TEST(report.passed, "" << report);
    BOOST_TEST(ps.scalar_type() == sg::dtype::f32);
    BOOST_TEST(xt::all(xt::equal(p.value<float>(), before)));
    BOOST_TEST(p.grad<float>()(2) == 9.0f);
}

// A loss function that throws on a perturbed value (call 3: the first entry at x + eps; call 4:
// at x - eps) or returns a non-scalar: the store comes back with its values, gradients and dtype.
BOOST_AUTO_TEST_CASE(gradcheck_restores_the_store_when_the_loss_throws) {
    for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32})
        for (const int fail_at : {3, 4, 5}) {
            sg::parameter_store ps(dt);
            auto w = ps.add("w", xt::xarray<double>{0.1, 0.5});
            const xt::xarray<double> before = w.value_as_double();
            int calls = 0;
            auto loss = [&](sg::tape& t) {
                ++calls;
                if (calls == fail_at && fail_at != 5) throw sg::value_error("boom");
                const sg::expr x = t.param(w);
                return calls == fail_at ? x : sg::sum(sg::square(x));  // 5: a non-scalar loss
            };
            BOOST_CHECK_THROW(sg::gradcheck(ps, loss), sg::error);
            BOOST_TEST(ps.scalar_type() == dt);
            BOOST_TEST(xt::all(xt::equal(w.value_as_double(), before)), "call " << fail_at);
        }
}

BOOST_AUTO_TEST_CASE(gradcheck_refuses_a_step_or_tolerance_it_cannot_use) {
    sg::parameter_store ps(sg::dtype::f64);
    auto w = ps.add("w", xt::xarray<double>{0.1, 0.5});
    auto loss = [&](sg::tape& t) { return sg::sum(sg::square(t.param(w))); };
    for (const double eps : {0.0, -1e-6, std::nan(""), double(INFINITY)}) {
        sg::gradcheck_options o;
        o.eps = eps;
        BOOST_CHECK_THROW(sg::gradcheck(ps, loss, o), sg::value_error);
    }
    sg::gradcheck_options o;
    o.atol = -1;
    BOOST_CHECK_THROW(sg::gradcheck(ps, loss, o), sg::value_error);
}

BOOST_AUTO_TEST_CASE(gradcheck_sampling_checks_k_entries_per_tensor) {
    sg::parameter_store ps(sg::dtype::f64);
    auto p = ps.add("big", xt::ones<double>({20, 30}) * 0.1);
    sg::gradcheck_options o;
    o.max_entries_per_tensor = 7;
    auto report = sg::gradcheck(
        ps, [&](sg::tape& t) { return sg::sum(sg::square(t.param(p))); }, o);
    BOOST_TEST(report.passed);
    BOOST_TEST(report.checked == 7u);
}

BOOST_AUTO_TEST_CASE(a_view_past_its_input_is_refused) {
    // The last entry as a view of two: with graph optimisations on, the node read one entry past
    // its input's memory (whatever lay there) and no error said so.
    static const sg::op_def& tail = sg::register_op(
        sg::op_builder("user_tail_view")
            .shape([](const sg::op_def&, std::span<const sg::shape>, const sg::attrs&) { return sg::shape{2}; })
            .saves(sg::saves::nothing)
            .view([](std::span<const sg::shape> in, const sg::attrs&) { return in[0].size() - 1; })
            .forward([](auto& c) { c.out()[0] = c.out()[1] = c.in(0)[c.in(0).size() - 1]; })
            .backward([](auto& c) { c.emit(0, [](std::size_t) { return 0.0; }); })
            .sample({{3}}));
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, 2.0, 3.0});
    try {
        sg::apply(tail, {x});
        BOOST_FAIL("no error");
    } catch (const sg::op_error& e) {
        BOOST_TEST(std::string(e.what()).find("user_tail_view: its view offset 2 and output shape [2] point past "
                                              "input 0 of shape [3]") != std::string::npos,
                   e.what());
    }
    auto y = sg::sum(x);  // the tape is still usable
    BOOST_TEST(t.item(y) == 6.0);
}

BOOST_AUTO_TEST_CASE(a_gradient_block_past_the_output_is_refused) {
    // A copy whose gradient_block points past its output's gradient: backward handed that memory
    // to its input as its gradient, silently wrong (0 and 0 here, for 2x = 2 and 4).
    static const sg::op_def& copy = sg::register_op(
        sg::op_builder("user_copy_far_block")
            .shape(sg::same_shape)
            .saves(sg::saves::nothing)
            .gradient_block([](std::span<const sg::shape>, const sg::attrs&, std::size_t) { return std::size_t(1000); })
            .forward([](auto& c) {
                for (std::size_t i = 0; i < c.out().size(); ++i) c.out()[i] = c.in(0)[i];
            })
            .backward([](auto& c) {
                auto g = c.grad_out();
                c.emit(0, [&](std::size_t i) { return g[i]; });
            })
            .sample({{2}}));
    sg::tape t(sg::dtype::f64);
    auto x = t.input(xt::xarray<double>{1.0, 2.0}, true);
    auto loss = sg::sum(sg::apply(copy, {sg::mul(x, x)}));
    try {
        t.backward(loss);
        BOOST_FAIL("no error");
    } catch (const sg::op_error& e) {
        BOOST_TEST(std::string(e.what()).find("user_copy_far_block: its gradient block 1000 for input 0 of shape [2] "
                                              "points past the output's gradient of shape [2]") != std::string::npos,
                   e.what());
    }
}

BOOST_AUTO_TEST_CASE(a_product_or_chain_input_past_the_arity_is_refused) {
    // A matmul of two inputs declared .product(0, 2): registered, it gave right gradients on one
    // tape and then segfaulted in gradcheck_op (the engine read input 2 of a two-input node).
    auto op = [](const char* name) {
        return sg::op_builder(name)
            .arity(2)
            .shape(sg::same_shape)
            .forward([](auto&) {})
            .backward([](auto&) {})
            .sample({{2, 2}, {2, 2}});
    };
    for (auto [builder, what] : {std::pair{op("user_product_b_2").product(0, 2), "product (b) names input 2"},
                                 std::pair{op("user_product_a_3").product(3, 1), "product (a) names input 3"},
                                 std::pair{op("user_product_c_2").product(0, 1, 2), "product (c) names input 2"},
                                 std::pair{op("user_product_b_neg").product(0, -2), "product (b) names input -2"}})
        try {
            sg::register_op(std::move(builder));
            BOOST_FAIL("no error for " << what);
        } catch (const sg::op_error& e) {
            BOOST_TEST(std::string(e.what()).find(what) != std::string::npos, e.what());
        }
    BOOST_CHECK_NO_THROW(sg::register_op(op("user_product_in_range").product(0, 1)));
}

BOOST_AUTO_TEST_CASE(derivative_of_output_needs_one_input_and_its_shape) {
    // Its backward writes input 0 from y and g(y) at the input's entries: with two inputs the
    // second's gradient was never written (garbage), and with a smaller output it read past y.
    try {
        sg::register_op(sg::op_builder("user_exp_of_two")
                            .arity(2)
                            .shape(sg::broadcast_shape)
                            .forward([](auto&) {})
                            .derivative_of_output<sg::output_derivative::exp>()
                            .sample({{2}, {2}}));
        BOOST_FAIL("no error");
    } catch (const sg::op_error& e) {
        BOOST_TEST(std::string(e.what()).find("derivative_of_output needs an op of one input (arity 2)") !=
                       std::string::npos,
                   e.what());
    }
    static const sg::op_def& first_row = sg::register_op(
        sg::op_builder("user_exp_first_row")
            .shape(
                [](const sg::op_def&, std::span<const sg::shape> in, const sg::attrs&) { return sg::shape{in[0][1]}; })
            .forward([](auto& c) {
                for (std::size_t i = 0; i < c.out().size(); ++i) c.out()[i] = std::exp(c.in(0)[i]);
            })
            .derivative_of_output<sg::output_derivative::exp>());
    sg::tape t(sg::dtype::f64);
    try {
        sg::apply(first_row, {t.input(xt::xarray<double>(xt::ones<double>({4, 3})), true)});
        BOOST_FAIL("no error");
    } catch (const sg::op_error& e) {
        BOOST_TEST(std::string(e.what()) ==
                   "user_exp_first_row: output shape [3] for input [4, 3] (an op declaring "
                   "derivative_of_output must give its input's shape)");
    }
}

BOOST_AUTO_TEST_CASE(a_sample_without_inputs_is_refused_for_one_or_more) {
    // An arity(-1) op (one or more inputs) with a sample of none registered; gradcheck_op then
    // threw "gradcheck: nothing to check ... give it a store" instead of naming the sample.
    try {
        sg::register_op(sg::op_builder("user_any_empty_sample")
                            .arity(-1)
                            .shape(sg::same_shape)
                            .forward([](auto&) {})
                            .backward([](auto&) {})
                            .sample({}));
        BOOST_FAIL("no error");
    } catch (const sg::op_error& e) {
        BOOST_TEST(std::string(e.what()).find("a sample has 0 inputs, the op takes one or more") != std::string::npos,
                   e.what());
    }
}

BOOST_AUTO_TEST_SUITE_END()
