// Parameters as operands and T() products (ops/operands.hpp): hand-computed values, the same leaf
// as t.param, a user cell bitwise equal to its t.param twin, and gradcheck.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;
using A = xt::xarray<double>;

namespace {

// a b^T by loops.
A times_transposed(const A& a, const A& b) {
    A r = xt::zeros<double>({a.shape()[0], b.shape()[0]});
    for (std::size_t i = 0; i < a.shape()[0]; ++i)
        for (std::size_t j = 0; j < b.shape()[0]; ++j)
            for (std::size_t k = 0; k < a.shape()[1]; ++k) r(i, j) += a(i, k) * b(j, k);
    return r;
}

bool bitwise_equal(const A& a, const A& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Minimal gated unit in the [out, in] layout, written both ways.
struct mgu {
    sg::parameter w_f, u_f, b_f, w_h, u_h, b_h;
    mgu(sg::parameter_scope s, std::size_t in, std::size_t hid, std::mt19937_64& rng)
        : w_f(s.add("w_f", random_array({hid, in}, rng, 0.5))),
          u_f(s.add("u_f", random_array({hid, hid}, rng, 0.5))),
          b_f(s.add("b_f", random_array({hid}, rng, 0.5))),
          w_h(s.add("w_h", random_array({hid, in}, rng, 0.5))),
          u_h(s.add("u_h", random_array({hid, hid}, rng, 0.5))),
          b_h(s.add("b_h", random_array({hid}, rng, 0.5))) {}
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const {
        auto f = sg::sigmoid(sg::matmul(x, sg::T(w_f)) + sg::matmul(h, sg::T(u_f)) + b_f);
        auto c = sg::tanh(sg::matmul(x, sg::T(w_h)) + sg::matmul(f * h, sg::T(u_h)) + b_h);
        return (1.0 - f) * h + f * c;
    }
    sg::expr explicit_params(const sg::expr& x, const sg::expr& h) const {
        sg::tape& t = x.owner();
        auto f = sg::sigmoid(sg::matmul(x, t.param(w_f), false, true) + sg::matmul(h, t.param(u_f), false, true) +
                             t.param(b_f));
        auto c = sg::tanh(sg::matmul(x, t.param(w_h), false, true) + sg::matmul(f * h, t.param(u_h), false, true) +
                          t.param(b_h));
        return (1.0 - f) * h + f * c;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(operands)

BOOST_AUTO_TEST_CASE(products_with_named_transposes) {
    sg::parameter_store ps(sg::dtype::f64);
    const A wv = arr({4, 3}, {1, 2, 3, 4, 5, 6, -1, 0, 1, 2, -2, 0.5});
    const A xv = arr({2, 3}, {1, -1, 2, 0.5, 3, -2});
    const sg::parameter w = ps.add("w", wv), b = ps.add("b", arr({4}, {0.5, -1, 2, 0}));
    sg::tape t(sg::dtype::f64);
    const sg::expr x = t.input(xv);
    const A xwt = arr({2, 4}, {5, 11, 1, 5, 0.5, 5, -2.5, -6});
    BOOST_TEST(bitwise_equal(xwt, times_transposed(xv, wv)));
    // x w^T with w a parameter: one leaf for w (three nodes), the same leaf t.param returns.
    const sg::expr y = sg::matmul(x, sg::T(w));
    BOOST_TEST(t.size() == 3u);
    BOOST_TEST(t.inputs_of(y.id())[1] == t.param(w).id());
    BOOST_TEST(t.size() == 3u);
    expect_near(t.value(y), xwt, 0.0);
    expect_near(t.value(sg::matmul(x, t.param(w), false, true)), xwt, 0.0);  // the deprecated spelling
    expect_near(t.value(sg::matmul(x, sg::T(t.param(w)))), xwt, 0.0);
    // w x^T = (x w^T)^T, and T() on the left alone.
    expect_near(t.value(sg::matmul(w, sg::T(x))), A(xt::transpose(xwt)), 0.0);
    const A yv = arr({4, 2}, {1, 0, 0, 1, 1, 1, 2, -1});
    A wty = xt::zeros<double>({3, 2});  // w^T y
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 2; ++j)
            for (std::size_t k = 0; k < 4; ++k) wty(i, j) += wv(k, i) * yv(k, j);
    expect_near(t.value(sg::matmul(sg::T(w), t.input(yv))), wty, 0.0);
    // matmul_add(bias, x, T(w)) = x w^T + bias, with the bias a parameter too.
    const A with_bias = xwt + arr({4}, {0.5, -1, 2, 0});
    expect_near(t.value(sg::matmul_add(b, x, sg::T(w))), with_bias, 0.0);
    expect_near(t.value(sg::matmul_add(t.param(b), x, sg::T(w))), with_bias, 0.0);
}

BOOST_AUTO_TEST_CASE(batched_products_and_arithmetic) {
    sg::parameter_store ps(sg::dtype::f64);
    std::mt19937_64 rng(3);
    const A qv = random_array({2, 3, 4}, rng), kv = random_array({2, 5, 4}, rng), bv = random_array({3}, rng);
    const sg::parameter k = ps.add("k", kv), b = ps.add("b", bv);
    sg::tape t(sg::dtype::f64);
    const sg::expr q = t.input(qv);
    A want = xt::zeros<double>({2, 3, 5});
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t j = 0; j < 5; ++j)
                for (std::size_t d = 0; d < 4; ++d) want(n, i, j) += qv(n, i, d) * kv(n, j, d);
    expect_near(t.value(sg::bmm(q, sg::T(k))), want, 1e-15);
    expect_near(t.value(sg::bmm(q, t.param(k), false, true)), want, 1e-15);
    // Elementwise ops and operators with a parameter on either side (b broadcasts over rows).
    const A xv = arr({2, 3}, {1, 2, 4, -1, 0.5, 8});
    const sg::expr x = t.input(xv);
    const A bb = xt::broadcast(bv, {2, 3});
    expect_near(t.value(x + b), xv + bb, 0.0);
    expect_near(t.value(b + x), bb + xv, 0.0);
    expect_near(t.value(x - b), xv - bb, 0.0);
    expect_near(t.value(b - x), bb - xv, 0.0);
    expect_near(t.value(x * b), xv * bb, 0.0);
    expect_near(t.value(b / x), bb / xv, 0.0);
    expect_near(t.value(sg::add(b, x)), bb + xv, 0.0);
    expect_near(t.value(sg::sub(x, b)), xv - bb, 0.0);
    expect_near(t.value(sg::mul(b, x)), bb * xv, 0.0);
    expect_near(t.value(sg::div(x, b)), xv / bb, 0.0);
    // Gradient reaches the parameter through the implicit leaf: d sum(x * b) / db = column sums of x.
    ps.zero_grad();
    t.backward(sg::sum(x * b));
    expect_near(b.grad_as_double(), arr({3}, {0, 2.5, 12}), 0.0);
}

BOOST_AUTO_TEST_CASE(a_parameter_on_a_cleared_tape_is_an_error) {
    sg::parameter_store ps(sg::dtype::f64);
    const sg::parameter w = ps.add("w", sg::shape{2, 2});
    sg::tape t(sg::dtype::f64);
    const sg::expr x = t.input(A(xt::ones<double>({1, 2})));
    t.clear();
    BOOST_CHECK_THROW(sg::matmul(x, sg::T(w)), sg::graph_error);
}

BOOST_AUTO_TEST_CASE(an_op_of_parameters_only_does_not_compile) {
    // No operand has a tape: the static_assert names the op and the way out.
    const std::string dir = SEQGRAD_BINARY_DIR, src = dir + "/operands_all_parameters.cpp";
    std::ofstream(src) << "#include <seqgrad/seqgrad.hpp>\n"
                          "int main() {\n"
                          "    seqgrad::parameter_store ps;\n"
                          "    const seqgrad::parameter w = ps.add(\"w\", seqgrad::shape{2, 2});\n"
                          "    (void)seqgrad::matmul(w, seqgrad::T(w));\n"
                          "}\n";
    const std::string cmd = std::string(SEQGRAD_CXX_COMPILER) + " -std=c++20 -fsyntax-only -I" + dir + "/include " +
                            src + " 2>&1";
    std::FILE* p = popen(cmd.c_str(), "r");
    BOOST_TEST_REQUIRE(p != nullptr);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int rc = pclose(p);
    BOOST_TEST(rc != 0, out);
    BOOST_TEST(out.find("matmul of parameters only: no tape to put them on; write t.param(w)") != std::string::npos,
               out);
    std::remove(src.c_str());
}

BOOST_AUTO_TEST_CASE(user_cell_equals_its_t_param_twin_bitwise) {
    // Float store and tape (training precision): values and gradients bitwise equal.
    sg::parameter_store ps;
    std::mt19937_64 rng(5);
    const mgu cell(sg::parameter_scope(ps, "mgu"), 3, 4, rng);
    std::vector<A> xs;
    for (int k = 0; k < 5; ++k) xs.push_back(random_array({2, 3}, rng));
    const A h0 = random_array({2, 4}, rng, 0.5);
    auto run = [&](bool as_operands, A& last) {
        ps.zero_grad();
        sg::tape t;
        sg::expr h = t.input(h0);
        for (const auto& x : xs) h = as_operands ? cell(t.input(x), h) : cell.explicit_params(t.input(x), h);
        last = t.value(h);
        t.backward(sg::sum(sg::square(h)));
        std::vector<A> g;
        for (const auto& p : ps.parameters()) g.push_back(p.grad_as_double());
        return g;
    };
    A h_ops, h_explicit;
    const std::vector<A> g_ops = run(true, h_ops), g_explicit = run(false, h_explicit);
    BOOST_TEST(bitwise_equal(h_ops, h_explicit));
    BOOST_TEST(xt::amax(xt::abs(h_ops))() > 0.01);  // not trivially zero
    for (std::size_t i = 0; i < g_ops.size(); ++i) {
        BOOST_TEST(bitwise_equal(g_ops[i], g_explicit[i]), ps[i].name());
        BOOST_TEST(xt::amax(xt::abs(g_ops[i]))() > 1e-4, ps[i].name());
    }
}

BOOST_AUTO_TEST_CASE(user_cell_passes_gradcheck_over_parameters_inputs_and_state) {
    sg::parameter_store ps, data;
    std::mt19937_64 rng(6);
    const mgu cell(sg::parameter_scope(ps, "mgu"), 3, 4, rng);
    std::vector<sg::parameter> xs;
    for (int k = 0; k < 4; ++k) xs.push_back(data.add("x" + std::to_string(k), random_array({2, 3}, rng)));
    const sg::parameter h0 = data.add("h0", random_array({2, 4}, rng, 0.5));
    sg::parameter_store* stores[] = {&ps, &data};
    const auto report = sg::gradcheck(stores, [&](sg::tape& t) {
        sg::expr h = t.param(h0);
        for (const auto& x : xs) h = cell(t.param(x), h);
        return sg::sum(sg::square(h));
    });
    BOOST_TEST(report.passed, report);
    BOOST_TEST(report.checked == ps.num_elements() + data.num_elements());
    BOOST_TEST(report.max_rel_err < 1e-5);
}

BOOST_AUTO_TEST_SUITE_END()
