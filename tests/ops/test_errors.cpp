// Bad input: every shape rule names the op and all input shapes; other misuse gets typed errors.
#include <boost/test/unit_test.hpp>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
using A = xt::xarray<double>;

namespace {
// Runs f, expects E, and checks that the message contains every fragment.
template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> fragments) {
    try {
        f();
        BOOST_ERROR("no exception; expected one mentioning " << *fragments.begin());
    } catch (const E& e) {
        const std::string m = e.what();
        for (const auto& s : fragments) BOOST_TEST(m.find(s) != std::string::npos, "'" << s << "' not in: " << m);
    }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(shape_mismatch_in_every_shape_rule) {
    sg::tape t(sg::dtype::f64);
    auto m23 = t.input(A{{1, 2, 3}, {4, 5, 6}});
    auto m22 = t.input(A{{1, 2}, {3, 4}});
    auto v3 = t.input(A{1, 2, 3});
    auto s = t.constant(1.0);
    const int one[] = {0};
    const int bad_ids[] = {0, 7};
    expect_error<sg::shape_error>([&] { (void)(m23 + m22); }, {"add", "[2, 3]", "[2, 2]", "broadcast"});
    expect_error<sg::shape_error>([&] { (void)(m23 - m22); }, {"sub", "[2, 3]", "[2, 2]"});
    expect_error<sg::shape_error>([&] { (void)(m23 * m22); }, {"mul", "[2, 3]", "[2, 2]"});
    expect_error<sg::shape_error>([&] { (void)(m23 / m22); }, {"div", "[2, 3]", "[2, 2]"});
    expect_error<sg::shape_error>([&] { (void)sg::matmul(m23, m23); }, {"matmul", "[2, 3]", "inner dimensions"});
    expect_error<sg::shape_error>([&] { (void)sg::matmul(v3, m23); }, {"matmul", "[3]", "rank 2"});
    expect_error<sg::shape_error>([&] { (void)sg::transpose(v3); }, {"transpose", "[3]", "rank 2"});
    expect_error<sg::shape_error>([&] { (void)sg::sum(m23, 2); }, {"sum_axis", "[2, 3]", "axis 2"});
    expect_error<sg::shape_error>([&] { (void)sg::reshape(m23, {4}); }, {"reshape", "[2, 3]", "[4]"});
    expect_error<sg::shape_error>([&] { (void)sg::concat({m23, m22}, 0); }, {"concat", "[2, 3]", "[2, 2]", "axis 0"});
    expect_error<sg::shape_error>([&] { (void)sg::slice(m23, 1, 2, 5); }, {"slice", "[2, 3]", "2:5"});
    const sg::shape s33{3, 3};
    expect_error<sg::shape_error>([&] { (void)sg::broadcast_to(m23, s33); },
                                  {"broadcast_to: input shape [2, 3]: cannot broadcast to [3, 3]"});
    expect_error<sg::shape_error>([&] { (void)sg::gather_rows(v3, one); }, {"gather_rows", "[3]", "rank 2"});
    expect_error<sg::shape_error>([&] { (void)sg::pick(m23, one); }, {"pick", "[2, 3]", "one index per row"});
    expect_error<sg::shape_error>([&] { (void)sg::softmax(s); }, {"softmax", "[]", "rank >= 1"});
    expect_error<sg::shape_error>([&] { (void)sg::log_softmax(s); }, {"log_softmax", "[]"});
    expect_error<sg::shape_error>([&] { (void)sg::cross_entropy(v3, one); }, {"cross_entropy", "[3]", "rank 2"});
    expect_error<sg::shape_error>([&] { (void)sg::cross_entropy(m23, one); },
                                  {"cross_entropy", "[2, 3]", "one target per row"});
    expect_error<sg::shape_error>([&] { (void)sg::mse_loss(m23, m22); }, {"mse_loss", "[2, 3]", "[2, 2]"});
    expect_error<sg::shape_error>([&] { (void)sg::split(m23, 2, 1); }, {"split", "[2, 3]"});
    expect_error<sg::value_error>([&] { (void)sg::gather_rows(m23, bad_ids); }, {"gather_rows", "7", "[2, 3]"});
}

// Constants print as the shortest decimal that reads back (detail::number), in graph dumps and
// messages alike: std::to_string's six decimals printed mul_scalar(x, 1e-8) as "c=0.000000",
// pow(x, 1/3) as "p=0.333333", and refused clamp(x, 1e-7, -1e-7) as "got lo 0.000000, hi -0.000000".
BOOST_AUTO_TEST_CASE(constants_print_exactly) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{1.0});
    BOOST_TEST(t.describe(sg::mul_scalar(x, 1e-8).id()) == "mul_scalar(n0, c=1e-08)");
    BOOST_TEST(t.describe(sg::add_scalar(x, 2.5e-7).id()) == "add_scalar(n0, c=2.5e-07)");
    BOOST_TEST(t.describe(sg::pow(x, 1.0 / 3).id()) == "pow(n0, p=0.3333333333333333)");
    BOOST_TEST(t.describe(sg::clamp(x, -1e-7, 0.5).id()) == "clamp(n0, lo=-1e-07, hi=0.5)");
    BOOST_TEST(t.describe(sg::elu(x, 1e-9).id()) == "elu(n0, alpha=1e-09)");
    expect_error<sg::value_error>([&] { (void)sg::clamp(x, 1e-7, -1e-7); },
                                  {"clamp: expected lo <= hi, got lo 1e-07, hi -1e-07"});
}

BOOST_AUTO_TEST_CASE(cross_entropy_targets_out_of_range) {
    sg::tape t(sg::dtype::f64);
    auto logits = t.input(A{{1, 2, 3}, {4, 5, 6}});
    const int targets[] = {1, 3};
    expect_error<sg::value_error>([&] { (void)sg::cross_entropy(logits, targets); },
                                  {"cross_entropy", "target 3", "row 1", "[2, 3]"});
    BOOST_TEST(t.size() == 1u);  // nothing half-added
}

// Composite functions name themselves, not the op they are built on, and add nothing on error.
BOOST_AUTO_TEST_CASE(composites_name_themselves) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{{1, 2, 3}, {4, 5, 6}});
    expect_error<sg::shape_error>([&] { (void)sg::mean(x, 5); }, {"mean: axis 5", "[2, 3]", "-2 <= axis < 2"});
    expect_error<sg::shape_error>([&] { (void)sg::mean(x, -3); }, {"mean: axis -3"});
    auto e = t.input(xt::xarray<double>::from_shape({0, 3}));
    expect_error<sg::shape_error>([&] { (void)sg::mse_loss(e, e); }, {"mse_loss", "[0, 3]", "reduction::mean"});
    BOOST_TEST(t.size() == 2u);
    BOOST_TEST(t.value(sg::mean(x, -1)) == (A{2.0, 5.0}));
}

BOOST_AUTO_TEST_CASE(unknown_op_and_wrong_arity) {
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{1.0});
    expect_error<sg::op_error>([&] { (void)sg::find_op("no_such_op"); }, {"no_such_op"});
    expect_error<sg::op_error>([&] { (void)sg::apply("no_such_op", std::vector<sg::expr>{x}); }, {"no_such_op"});
    expect_error<sg::op_error>([&] { (void)t.apply(sg::find_op("add"), {x}); }, {"add", "takes 2", "got 1"});
    expect_error<sg::op_error>([&] { (void)t.apply(sg::find_op("tanh"), {x, x}); }, {"tanh", "takes 1", "got 2"});
    expect_error<sg::op_error>([&] { (void)t.apply(sg::find_op("concat"), std::span<const sg::expr>{}); },
                               {"concat", "one or more"});
}

BOOST_AUTO_TEST_CASE(gradient_through_an_op_without_one) {
    // An op registered with no_gradient(): using it is fine, differentiating through it is not.
    static const sg::op_def& floor_op = sg::register_op(sg::op_builder("test_floor")
                                                            .shape(sg::same_shape)
                                                            .forward([](auto& c) {
                                                                auto x = c.in(0);
                                                                auto y = c.out();
                                                                for (std::size_t i = 0; i < y.size(); ++i)
                                                                    y[i] = std::floor(x[i]);
                                                            })
                                                            .no_gradient()
                                                            .sample({{2}}));
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{1.5, -0.5}, true);
    auto y = t.apply(floor_op, {x});
    BOOST_TEST(t.value(y)(0) == 1.0);
    expect_error<sg::graph_error>([&] { t.backward(sg::sum(y * 2.0)); }, {"test_floor", "has no gradient"});
    // Without a gradient-requiring input, nothing is asked of it.
    auto c = t.input(A{2.5});
    auto z = sg::sum(t.apply(floor_op, {c}) * x);
    t.backward(z);
    BOOST_TEST(t.grad(x)(0) == 2.0);
}

BOOST_AUTO_TEST_CASE(the_gradient_must_be_declared) {
    // Saying nothing about the gradient is refused at registration...
    expect_error<sg::op_error>(
        [] {
            sg::register_op(
                sg::op_builder("test_undeclared").shape(sg::same_shape).forward([](auto&) {}).sample({{2}}));
        },
        {"test_undeclared", "no gradient declared"});
    // ...and "not implemented yet" is its own answer, named as such when a gradient is asked for.
    static const sg::op_def& unfinished = sg::register_op(sg::op_builder("test_unfinished")
                                                              .shape(sg::same_shape)
                                                              .forward([](auto& c) {
                                                                  auto x = c.in(0);
                                                                  auto y = c.out();
                                                                  for (std::size_t i = 0; i < y.size(); ++i)
                                                                      y[i] = x[i] * x[i] * x[i];
                                                              })
                                                              .gradient_not_implemented()
                                                              .sample({{2}}));
    sg::tape t(sg::dtype::f64);
    auto x = t.input(A{1.5, -0.5}, true);
    auto y = t.apply(unfinished, {x});
    BOOST_TEST(t.value(y)(1) == -0.125);
    expect_error<sg::graph_error>([&] { t.backward(sg::sum(y)); }, {"test_unfinished", "no gradient implemented"});
}

BOOST_AUTO_TEST_CASE(duplicate_registration_is_rejected) {
    expect_error<sg::op_error>(
        [] { sg::register_op(sg::op_builder("tanh").shape(sg::same_shape).forward([](auto&) {})); },
        {"tanh", "already registered"});
    expect_error<sg::op_error>([] { sg::register_op(sg::op_builder("test_no_shape").forward([](auto&) {})); },
                               {"test_no_shape", "shape rule"});
}

BOOST_AUTO_TEST_SUITE_END()
