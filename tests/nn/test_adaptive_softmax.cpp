// Adaptive softmax: gradient checks in double, probabilities summing to 1 over the vocabulary,
// the loss equal to -log_prob of the targets, errors, and PyTorch's AdaptiveLogSoftmaxWithLoss
// values and gradients from the same weights (tests/nn/torch_adaptive.py; skipped without torch).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <seqgrad/nn/adaptive_softmax.hpp>
#include <seqgrad/optim/optim.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;
using A = xt::xarray<double>;

namespace {

A random_array(const std::vector<std::size_t>& shp, std::mt19937_64& rng, double scale = 1.0) {
    std::normal_distribution<double> d(0.0, scale);
    A v = xt::zeros<double>(shp);
    for (auto& x : v) x = d(rng);
    return v;
}

// Targets in the shortlist [0, 5), cluster 0 [5, 12) and cluster 1 [12, 20), and one ignored row.
const std::vector<int> targets = {0, 4, 5, 11, 12, 19, 3, -1, 15, 7};

double worst_scaled_diff(const A& got, const A& want) {
    BOOST_TEST_REQUIRE(got.shape() == want.shape());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got.data()[i] - want.data()[i]) / std::max(1.0, std::abs(want.data()[i])));
    return worst;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(adaptive_softmax)

BOOST_AUTO_TEST_CASE(shapes_and_names_are_pytorchs) {
    sg::parameter_store ps;
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 16, 100, {10, 40}, 4.0);
    BOOST_TEST(out.head_size() == 12u);
    BOOST_TEST((out.head.weight.shape() == sg::shape{12, 16}));
    BOOST_TEST(!out.head.has_bias());
    BOOST_TEST((ps.get("out.tail.0.0.weight").shape() == sg::shape{4, 16}));  // 16 / 4
    BOOST_TEST((ps.get("out.tail.0.1.weight").shape() == sg::shape{30, 4}));  // [10, 40)
    BOOST_TEST((ps.get("out.tail.1.0.weight").shape() == sg::shape{1, 16}));  // 16 / 16
    BOOST_TEST((ps.get("out.tail.1.1.weight").shape() == sg::shape{60, 1}));  // [40, 100)
    BOOST_TEST(ps.size() == 5u);
    // A last cutoff equal to the vocabulary size is the end of the last cluster, not a cluster.
    nn::adaptive_softmax same(sg::parameter_scope(ps, "b"), 16, 100, {10, 40, 100});
    BOOST_TEST(same.n_clusters() == 2u);
}

// PyTorch sizes tail i as in // div^(i+1) (Python's float floor division), which for a div_value
// such as 1.6 is one less than floor(in / div^(i+1)). Expected sizes from PyTorch 1.13's
// AdaptiveLogSoftmaxWithLoss(in, 20, [4, 8], div_value).
BOOST_AUTO_TEST_CASE(tail_sizes_follow_pythons_floor_division) {
    struct case_ {
        std::size_t in;
        double div;
        std::size_t hsz0, hsz1;
    };
    for (const case_& c : {case_{8, 1.6, 4, 3}, case_{11, 1.1, 9, 9}, case_{16, 3.2, 4, 1}, case_{100, 4.0, 25, 6},
                           case_{10, 2.5, 4, 1}}) {
        sg::parameter_store ps;
        nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), c.in, 20, {4, 8}, c.div);
        BOOST_TEST((ps.get("out.tail.0.0.weight").shape() == sg::shape{c.hsz0, c.in}), c.in << " // " << c.div);
        BOOST_TEST((ps.get("out.tail.1.0.weight").shape() == sg::shape{c.hsz1, c.in}), c.in << " // " << c.div);
        BOOST_TEST((ps.get("out.tail.1.1.weight").shape() == sg::shape{12, c.hsz1}));
    }
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw_naming_the_module) {
    sg::parameter_store ps;
    auto make = [&](std::vector<std::size_t> c, double div) {
        nn::adaptive_softmax(sg::parameter_scope(ps, "bad"), 16, 100, std::move(c), div);
    };
    BOOST_CHECK_THROW(make({}, 4.0), sg::value_error);
    BOOST_CHECK_THROW(make({40, 10}, 4.0), sg::value_error);
    BOOST_CHECK_THROW(make({0, 10}, 4.0), sg::value_error);
    BOOST_CHECK_THROW(make({10, 101}, 4.0), sg::value_error);
    BOOST_CHECK_THROW(make({10, 20, 30}, 4.0), sg::value_error);  // 16 / 64 rounds to 0 features
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 16, 100, {10, 40});
    sg::tape t;
    const sg::expr x = t.input(A(xt::zeros<double>({3, 16})));
    std::vector<int> three = {1, 2, 3}, two = {1, 2}, big = {1, 100, 2};
    try {
        out.loss(t.input(A(xt::zeros<double>({3, 15}))), three);
        BOOST_FAIL("expected shape_error");
    } catch (const sg::shape_error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("adaptive_softmax 'out'") != std::string::npos, m);
        BOOST_TEST(m.find("[3, 15]") != std::string::npos, m);
    }
    BOOST_CHECK_THROW(out.loss(x, two), sg::value_error);
    BOOST_CHECK_THROW(out.loss(x, big), sg::value_error);
    BOOST_CHECK_THROW(out.loss(x, three, sg::reduction::none), sg::value_error);
}

BOOST_AUTO_TEST_CASE(probabilities_sum_to_one_and_the_loss_is_minus_log_prob_of_the_targets) {
    std::mt19937_64 rng(3);
    sg::parameter_store ps(sg::dtype::f64);
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 8, 20, {5, 12}, 2.0, true, rng);
    for (const sg::parameter& p : ps.parameters()) p.assign(random_array(p.shape().to_vector(), rng));
    sg::tape t(sg::dtype::f64);
    const sg::expr x = t.input(random_array({targets.size(), 8}, rng, 2.0));
    const A lp = t.value(out.log_prob(x));
    BOOST_TEST_REQUIRE((lp.shape() == std::vector<std::size_t>{targets.size(), 20}));
    double want = 0;
    std::size_t counted = 0;
    for (std::size_t r = 0; r < targets.size(); ++r) {
        double s = 0;
        for (std::size_t j = 0; j < 20; ++j) s += std::exp(lp(r, j));
        BOOST_TEST(std::abs(s - 1.0) < 1e-12, "row " << r << " sums to " << s);
        if (targets[r] >= 0) {
            want -= lp(r, static_cast<std::size_t>(targets[r]));
            ++counted;
        }
    }
    BOOST_TEST(std::abs(t.item(out.loss(x, targets, sg::reduction::sum)) - want) < 1e-12 * std::abs(want));
    BOOST_TEST(std::abs(t.item(out.loss(x, targets)) - want / double(counted)) < 1e-12 * std::abs(want));
}

BOOST_AUTO_TEST_CASE(gradients_match_central_differences) {
    std::mt19937_64 rng(5);
    sg::parameter_store ps(sg::dtype::f64), inputs(sg::dtype::f64);
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 8, 20, {5, 12}, 2.0, true, rng);
    const sg::parameter x = inputs.add("x", random_array({targets.size(), 8}, rng));
    const A r = random_array({targets.size(), 20}, rng);
    std::vector<sg::parameter_store*> stores = {&ps, &inputs};
    const auto loss_report = sg::gradcheck(stores, [&](sg::tape& t) { return out.loss(t.param(x), targets); });
    BOOST_TEST(loss_report.passed, loss_report);
    // log_prob through a random projection, so every entry's gradient is checked.
    const auto lp_report = sg::gradcheck(stores,
                                         [&](sg::tape& t) { return sg::sum(out.log_prob(t.param(x)) * t.input(r)); });
    BOOST_TEST(lp_report.passed, lp_report);
}

BOOST_AUTO_TEST_CASE(learns_to_classify_words_in_every_cluster) {
    // Each of 20 words has a fixed random 8-feature input; the model must learn which word it is,
    // shortlist and tail clusters alike: the mean loss falls from ~ln 20 = 3.0 to below 0.05.
    std::mt19937_64 rng(9);
    sg::parameter_store ps;
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 8, 20, {5, 12}, 2.0, true, rng);
    const A x = random_array({20, 8}, rng, 1.0);
    std::vector<int> words(20);
    for (int k = 0; k < 20; ++k) words[std::size_t(k)] = k;
    sg::optim::adam opt(ps, 0.05);
    double first = 0, last = 0;
    for (int step = 0; step < 300; ++step) {
        sg::tape t;
        const sg::expr loss = out.loss(t.input(x), words);
        t.backward(loss);
        opt.step();
        (step == 0 ? first : last) = t.item(loss);
    }
    BOOST_TEST(first > 2.0);
    BOOST_TEST(last < 0.05, "loss " << first << " -> " << last);
}

BOOST_AUTO_TEST_CASE(equals_pytorchs_adaptive_log_softmax_with_loss) {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        BOOST_TEST_MESSAGE("skipped: python3-torch is not installed (/usr/bin/python3 -c 'import torch' failed)");
        return;
    }
    const auto dir = std::filesystem::temp_directory_path() / ("seqgrad_adaptive_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string cmd = "/usr/bin/python3 " SEQGRAD_SOURCE_DIR "/tests/nn/torch_adaptive.py " + dir.string();
    const int rc = std::system(cmd.c_str());
    auto state = rc == 0 ? sg::read_npz((dir / "state.npz").string()) : std::map<std::string, A>{};
    auto ref = rc == 0 ? sg::read_npz((dir / "ref.npz").string()) : std::map<std::string, A>{};
    std::filesystem::remove_all(dir);
    BOOST_TEST_REQUIRE(rc == 0, "torch_adaptive.py failed");

    sg::parameter_store ps, inputs;  // float32, as PyTorch ran
    nn::adaptive_softmax out(sg::parameter_scope(ps, "out"), 8, 20, {5, 12}, 2.0, true);
    BOOST_TEST_REQUIRE(state.size() == ps.size());
    for (auto& [name, v] : state) ps.get("out." + name).assign(v);
    const sg::parameter x = inputs.add("x", ref["x"]);
    std::vector<int> tg;
    for (double v : ref["targets"]) tg.push_back(static_cast<int>(v));

    sg::tape t;
    const sg::expr lp = out.log_prob(t.param(x));
    const A lpv = t.value(lp);
    BOOST_TEST(worst_scaled_diff(lpv, ref["log_prob"]) <= 1e-5);
    A output = xt::zeros<double>({tg.size()});
    for (std::size_t r = 0; r < tg.size(); ++r) output(r) = lpv(r, static_cast<std::size_t>(tg[r]));
    BOOST_TEST(worst_scaled_diff(output, ref["output"]) <= 1e-5);

    const sg::expr loss = out.loss(t.param(x), tg);
    BOOST_TEST(std::abs(t.item(loss) - ref["loss"]()) <= 1e-5 * std::abs(ref["loss"]()));
    t.backward(loss);
    BOOST_TEST(worst_scaled_diff(x.grad_as_double(), ref["grad.x"]) <= 1e-5);
    for (const auto& [name, v] : state)
        BOOST_TEST(worst_scaled_diff(ps.get("out." + name).grad_as_double(), ref["grad." + name]) <= 1e-5, name);
}

BOOST_AUTO_TEST_SUITE_END()
