// The README's code, compiled and run: the lines between "README begin" and "README end" marks
// below are the README's code blocks, and a test holds them equal to the README's text.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// README begin cell
#include <seqgrad/seqgrad.hpp>
namespace sg = seqgrad;

// A minimal gated unit: a cell seqgrad does not ship, written as plain code over expressions.
// Weights are [out, in] (the library's layout, PyTorch's); T(w) is w transposed in the product.
struct mgu {
    sg::parameter w_f, u_f, b_f, w_h, u_h, b_h;
    mgu(sg::parameter_scope s, std::size_t in, std::size_t hid)
        : w_f(s.add("w_f", sg::shape{hid, in})),
          u_f(s.add("u_f", sg::shape{hid, hid})),
          b_f(s.add("b_f", sg::shape{hid})),
          w_h(s.add("w_h", sg::shape{hid, in})),
          u_h(s.add("u_h", sg::shape{hid, hid})),
          b_h(s.add("b_h", sg::shape{hid})) {}
    sg::expr operator()(const sg::expr& x, const sg::expr& h) const {
        auto f = sg::sigmoid(sg::matmul(x, sg::T(w_f)) + sg::matmul(h, sg::T(u_f)) + b_f);
        auto c = sg::tanh(sg::matmul(x, sg::T(w_h)) + sg::matmul(f * h, sg::T(u_h)) + b_h);
        return (1.0 - f) * h + f * c;
    }
};
// README end

// The README's layout, one builder call per concern:
// clang-format off
// README begin softplus
// softplus(x) = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|): no overflow for large x.
SEQGRAD_REGISTER_OP(my_softplus) = sg::op_builder("my_softplus")
    .shape(sg::same_shape).saves(sg::saves::inputs)
    .forward([](auto& c) { auto x = c.in(0); auto y = c.out();
                           for (std::size_t i = 0; i < y.size(); ++i)
                               y[i] = (x[i] > 0 ? x[i] : 0) + std::log1p(std::exp(-std::abs(x[i]))); })
    .backward([](auto& c) { auto x = c.in(0); auto gy = c.grad_out();  // d/dx = sigmoid(x)
                            c.emit(0, [&](std::size_t i) { return gy[i] / (1 + std::exp(-x[i])); }); })
    .sample({{3, 2}});   // the registry-wide gradient check picks it up
// use: sg::apply(my_softplus, {x})
// README end
// clang-format on

namespace {

// The README's code blocks that hold a mark, in order.
std::vector<std::string> readme_blocks() {
    std::ifstream in(std::string(SEQGRAD_BINARY_DIR) + "/include/seqgrad/README.md");
    BOOST_TEST_REQUIRE(in.good(), "README.md not found beside the sources");
    std::vector<std::string> blocks;
    std::string line, cur;
    bool inside = false;
    while (std::getline(in, line)) {
        if (!inside && line == "```cpp") {
            inside = true;
            cur.clear();
        } else if (inside && line == "```") {
            inside = false;
            blocks.push_back(cur);
        } else if (inside) {
            cur += line + "\n";
        }
    }
    return blocks;
}

// The text between "// README begin" and "// README end" marks in this file, one entry per mark;
// regions inside a function lose their indentation.
std::vector<std::string> marked_regions() {
    std::ifstream in(std::string(SEQGRAD_BINARY_DIR) + "/include/seqgrad/tests/core/test_readme.cpp");
    BOOST_TEST_REQUIRE(in.good());
    std::vector<std::string> regions;
    std::string line, cur;
    std::size_t indent = 0;
    bool inside = false;
    while (std::getline(in, line)) {
        const std::size_t lead = line.find_first_not_of(' ');
        const std::string body = lead == std::string::npos ? "" : line.substr(lead);
        if (body.rfind("// README begin", 0) == 0) {
            inside = true;
            indent = lead;
            cur.clear();
        } else if (body == "// README end") {
            inside = false;
            regions.push_back(cur);
        } else if (inside) {
            cur += (line.size() >= indent ? line.substr(indent) : std::string()) + "\n";
        }
    }
    return regions;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(readme)

BOOST_AUTO_TEST_CASE(code_blocks_are_the_compiled_code) {
    const std::vector<std::string> blocks = readme_blocks(), regions = marked_regions();
    BOOST_TEST_REQUIRE(regions.size() == 3u);
    BOOST_TEST_REQUIRE(blocks.size() >= 2u);
    // The first block is the cell followed by its gradient check; the second, the custom op.
    BOOST_TEST(blocks[0] == regions[0] + "\n" + regions[2]);
    BOOST_TEST(blocks[1] == regions[1]);
}

BOOST_AUTO_TEST_CASE(gradient_check_example_passes) {
    // README begin gradcheck
    sg::parameter_store ps, data;  // the model; its inputs and initial state (a store of their own)
    mgu cell(sg::parameter_scope(ps, "mgu"), 8, 16);
    std::mt19937_64 rng(1);
    for (const auto& p : ps.parameters()) sg::nn::uniform(p, -0.25, 0.25, rng);
    std::vector<sg::parameter> xs;
    for (int k = 0; k < 5; ++k) xs.push_back(data.add("x" + std::to_string(k), sg::shape{2, 8}));
    const sg::parameter h0 = data.add("h0", sg::shape{2, 16});
    for (const auto& p : data.parameters()) sg::nn::normal(p, 0.0, 1.0, rng);
    // Prove the gradients right: double precision, every entry of the weights, the inputs and h0.
    sg::parameter_store* stores[] = {&ps, &data};
    auto report = sg::gradcheck(stores, [&](sg::tape& t) {
        auto h = t.param(h0);
        for (const auto& x : xs) h = cell(t.param(x), h);  // unrolled over time on the tape
        return sg::sum(sg::square(h));
    });
    std::cout << report;  // per tensor: max abs/rel error; the largest errors; PASS/FAIL
    // README end
    std::ostringstream out;
    out << report;
    BOOST_TEST(report.passed, out.str());
    BOOST_TEST(report.checked == ps.num_elements() + data.num_elements());
    BOOST_TEST(report.checked == 2u * (16 * 8 + 16 * 16 + 16) + 5u * 2 * 8 + 2u * 16);
    BOOST_TEST(report.max_rel_err < 1e-5);
    BOOST_TEST(out.str().find("largest errors") != std::string::npos, out.str());
}

BOOST_AUTO_TEST_CASE(softplus_example_is_finite_far_out_on_a_float_tape) {
    sg::tape t;  // float
    const sg::expr x = t.input(xt::xarray<float>{-100.0f, -1.0f, 0.0f, 1.0f, 100.0f}, true);
    const sg::expr y = sg::apply(my_softplus, {x});
    const xt::xarray<double> v = t.value(y);
    const double want[] = {std::exp(-100.0), std::log1p(std::exp(-1.0)), std::log(2.0), 1 + std::log1p(std::exp(-1.0)),
                           100.0};
    for (std::size_t i = 0; i < 5; ++i) BOOST_TEST(std::abs(v(i) - want[i]) <= 1e-6 * std::max(1.0, want[i]), i);
    t.backward(sg::sum(y));
    const xt::xarray<double> g = t.grad(x);
    const double dwant[] = {0.0, 1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-1.0)), 1.0};
    for (std::size_t i = 0; i < 5; ++i) BOOST_TEST(std::abs(g(i) - dwant[i]) <= 1e-6, i);
    const sg::op_check c = sg::gradcheck_op(my_softplus);
    BOOST_TEST(c.passed, c.how);
}

BOOST_AUTO_TEST_SUITE_END()
