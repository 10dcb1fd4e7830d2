// The fused output layer (matmul_add + cross_entropy: log-softmax, loss and gradient in one op)
// against its unfused composition (linear, log_softmax, pick): equal values and gradients, in
// float at the word-level size (rows wider than the kernel's lanes, with a tail) and in double.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <vector>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
using A = xt::xarray<double>;

namespace {

A random_array(const std::vector<std::size_t>& shp, std::mt19937_64& rng, double scale) {
    std::normal_distribution<double> d(0.0, scale);
    A v = xt::zeros<double>(shp);
    for (auto& x : v) x = d(rng);
    return v;
}

double worst_scaled_diff(const A& got, const A& want) {
    BOOST_TEST_REQUIRE(got.shape() == want.shape());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got.data()[i] - want.data()[i]) / std::max(1.0, std::abs(want.data()[i])));
    return worst;
}

struct result {
    double loss;
    A gh, gw, gb;
};

// loss = sum over rows of -log softmax(h W^T + b)[target], fused or composed.
result run(sg::dtype dt, bool fused, const A& h, const A& w, const A& b, const std::vector<int>& targets) {
    sg::parameter_store ps(dt);
    const auto ph = ps.add("h", h), pw = ps.add("w", w), pb = ps.add("b", b);
    sg::tape t(dt);
    sg::expr loss;
    if (fused) {
        loss = sg::cross_entropy(sg::matmul_add(t.param(pb), t.param(ph), sg::T(t.param(pw))), targets);
    } else {
        const sg::expr lp = sg::log_softmax(sg::matmul(t.param(ph), sg::T(t.param(pw))) + t.param(pb));
        std::vector<int> picked;
        for (int k : targets) picked.push_back(k < 0 ? 0 : k);
        A mask = xt::zeros<double>({targets.size()});
        for (std::size_t r = 0; r < targets.size(); ++r) mask(r) = targets[r] < 0 ? 0.0 : 1.0;
        loss = -sg::sum(sg::pick(lp, picked) * t.input(mask));
    }
    const double l = t.item(loss);
    t.backward(loss);
    return {l, ph.grad_as_double(), pw.grad_as_double(), pb.grad_as_double()};
}

void compare(sg::dtype dt, std::size_t n, std::size_t in, std::size_t v, double tol) {
    std::mt19937_64 rng(11);
    const A h = random_array({n, in}, rng, 1.0), w = random_array({v, in}, rng, 0.3), b = random_array({v}, rng, 1.0);
    std::uniform_int_distribution<int> tok(0, static_cast<int>(v) - 1);
    std::vector<int> targets(n);
    for (int& k : targets) k = tok(rng);
    targets[1] = -1;                       // ignored row
    targets[2] = static_cast<int>(v) - 1;  // last class: in the tail after the lanes
    const result f = run(dt, true, h, w, b, targets), c = run(dt, false, h, w, b, targets);
    BOOST_TEST(std::abs(f.loss - c.loss) <= tol * std::abs(c.loss), f.loss << " vs " << c.loss);
    BOOST_TEST(worst_scaled_diff(f.gh, c.gh) <= tol);
    BOOST_TEST(worst_scaled_diff(f.gw, c.gw) <= tol);
    BOOST_TEST(worst_scaled_diff(f.gb, c.gb) <= tol);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_softmax)

BOOST_AUTO_TEST_CASE(fused_output_layer_equals_the_composition_in_double) { compare(sg::dtype::f64, 9, 7, 53, 1e-12); }

BOOST_AUTO_TEST_CASE(fused_output_layer_equals_the_composition_in_float_at_word_level_width) {
    compare(sg::dtype::f32, 24, 32, 10007, 2e-5);
}

BOOST_AUTO_TEST_SUITE_END()
