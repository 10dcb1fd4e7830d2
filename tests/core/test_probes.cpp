// Defects found by probing the library with bad input, kept as tests: non-finite leaves under
// check_finite, gradcheck over nothing, the mean of nothing, optimiser eps = 0, and temporaries of
// killed saves.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <seqgrad/ops/kernels.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
namespace fs = std::filesystem;

using seqgrad_test::expect_error;

BOOST_AUTO_TEST_SUITE(probes)

BOOST_AUTO_TEST_CASE(check_finite_blames_a_nan_leaf_on_itself) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    sg::tape t;
    t.set_check_finite(true);
    auto ok = t.input(xt::xarray<double>{1.0, 2.0});
    expect_error<sg::numeric_error>([&] { t.input(xt::xarray<double>{1.0, nan}); }, "input n1");
    BOOST_TEST(t.size() == 1u);  // the bad leaf was not added
    expect_error<sg::numeric_error>([&] { t.constant(std::numeric_limits<double>::infinity(), {2}); }, "Inf");
    sg::parameter_store ps;
    auto w = ps.add("enc.w", xt::xarray<double>{0.0, nan});
    expect_error<sg::numeric_error>([&] { t.param(w); }, "parameter enc.w");
    expect_error<sg::numeric_error>([&] { t.param(w); }, "parameter enc.w");  // not cached as a leaf
    w.assign(xt::xarray<double>{0.0, 1.0});
    BOOST_TEST(t.item(sg::sum(t.param(w) * ok)) == 2.0);
}

BOOST_AUTO_TEST_CASE(check_finite_blames_a_nan_seed_on_the_seed) {
    sg::tape t;
    t.set_check_finite(true);
    auto x = t.input(xt::xarray<double>{1.0, 2.0}, true);
    auto y = sg::tanh(x) * 2.0;
    const xt::xarray<double> seed{1.0, std::numeric_limits<double>::quiet_NaN()};
    expect_error<sg::numeric_error>([&] { t.backward(y, seed); }, "seed gradient");
}

// checkpoint_bptt with truncate_bptt is refused when the plan is set, not at backward after a
// whole sequence was recorded.
BOOST_AUTO_TEST_CASE(a_plan_checkpointing_truncated_windows_is_refused_when_set) {
    sg::tape t;
    expect_error<sg::graph_error>([&] { t.set_plan(sg::checkpoint_bptt(2) | sg::truncate_bptt(3)); },
                                  "does not combine with checkpoint_bptt");
    t.set_plan(sg::checkpoint_bptt(2));  // alone, still fine
}

BOOST_AUTO_TEST_CASE(gradcheck_with_nothing_to_check_throws) {
    sg::parameter_store empty(sg::dtype::f64);
    auto loss = [](sg::tape& t) { return t.constant(1.0, {1}); };
    expect_error<sg::value_error>([&] { sg::gradcheck(empty, loss); }, "nothing to check");
    sg::parameter_store frozen(sg::dtype::f64);
    frozen.add("w", xt::xarray<double>{1.0}).set_trainable(false);
    expect_error<sg::value_error>([&] { sg::gradcheck(frozen, loss); }, "nothing to check");
}

BOOST_AUTO_TEST_CASE(gradcheck_names_a_null_store) {
    sg::parameter_store ps(sg::dtype::f64);
    ps.add("w", xt::xarray<double>{1.0});
    std::vector<sg::parameter_store*> stores{&ps, nullptr};
    auto loss = [](sg::tape& t) { return sg::sum(t.input(xt::xarray<double>{1.0})); };
    expect_error<sg::value_error>([&] { sg::gradcheck(std::span<sg::parameter_store* const>(stores), loss); },
                                  "gradcheck: store 1 of 2 is a null pointer");
}

// A finite double beyond float's range entered a float tape as inf (leaves, constants, scalars);
// parameters already refused it on every path into a float store.
BOOST_AUTO_TEST_CASE(values_beyond_float_are_refused_on_a_float_tape) {
    sg::tape t(sg::dtype::f32);
    expect_error<sg::value_error>(
        [&] {
            t.input(xt::xarray<double>{1.0, 1e300});
        },
        "tape::input: value 1e+300 at index 1 does not fit a float tape");
    expect_error<sg::value_error>([&] { t.constant(-1e39, {2}); },
                                  "tape::constant: value -1e+39 does not fit a float tape");
    const sg::expr x = t.input(xt::xarray<double>{1.0, 2.0});
    expect_error<sg::value_error>([&] { sg::add_scalar(x, 1e300); },
                                  "add_scalar: value 1e+300 does not fit a float tape");
    expect_error<sg::value_error>([&] { sg::mul_scalar(x, -1e40); },
                                  "mul_scalar: value -1e+40 does not fit a float tape");
    BOOST_TEST(t.size() == 1u);  // nothing recorded by the refused calls
    const double inf = std::numeric_limits<double>::infinity();
    BOOST_TEST(std::isinf(t.value(t.input(xt::xarray<double>{inf}))(0)));  // inf and NaN pass as they are
    BOOST_TEST(t.value(sg::mul_scalar(x, 3.4e38))(0) == float(3.4e38));
    sg::tape d(sg::dtype::f64);
    BOOST_TEST(d.value(d.input(xt::xarray<double>{1e300}))(0) == 1e300);  // a double tape holds them
}

// cross_entropy's float softmax reads e^x through detail::vexp, whose clamp at -87 gave every logit
// more than 87 below the row's maximum (a -inf one too) a gradient of 1.6e-38 instead of 0.
BOOST_AUTO_TEST_CASE(far_below_logits_get_exactly_zero_gradient_in_float) {
    const double inf = std::numeric_limits<double>::infinity();
    for (const double low : {-1e4, -inf, -100.0}) {
        sg::tape t(sg::dtype::f32);
        const sg::expr x = t.input(xt::xarray<double>{{1e4, 0.0, low, 1e4 - 20.0}}, true);
        const int target[] = {1};
        t.backward(sg::sum(sg::cross_entropy(x, target, sg::reduction::none)));
        const xt::xarray<double> g = t.grad(x);
        BOOST_TEST(std::abs(g(0, 0) - 1.0) < 1e-6);
        BOOST_TEST(g(0, 1) == -1.0);  // e^-1e4: 0 in any precision
        BOOST_TEST(g(0, 2) == 0.0, "low " << low);
        BOOST_TEST(std::abs(g(0, 3) / std::exp(-20.0) - 1.0) < 1e-5);  // e^-20 is well inside float
    }
    BOOST_TEST(sg::detail::vexp(-87.3f) > 0.0f);
    BOOST_TEST(sg::detail::vexp(-87.4f) == 0.0f);
}

BOOST_AUTO_TEST_CASE(mean_of_nothing_is_an_error) {
    sg::tape t;
    expect_error<sg::shape_error>([&] { sg::mean(t.constant(1.0, {0, 3})); }, "no entries");
    expect_error<sg::shape_error>([&] { sg::mean(t.constant(1.0, {0, 3}), 0); }, "axis 0");
    BOOST_TEST(t.item(sg::mean(t.input(xt::xarray<double>{1.0, 2.0, 6.0}))) == 3.0);
    const auto m = t.value(sg::mean(t.constant(2.0, {0, 3}), 1));  // rows of 3: fine, none of them
    BOOST_TEST(m.size() == 0u);
}

BOOST_AUTO_TEST_CASE(optimisers_reject_eps_zero) {
    sg::parameter_store ps;
    ps.add("w", xt::xarray<double>{1.0});
    namespace so = sg::optim;
    expect_error<sg::value_error>([&] { so::adam(ps, so::adam_options{.eps = 0}); },
                                  "adam: eps must be finite and > 0");
    expect_error<sg::value_error>([&] { so::rmsprop(ps, so::rmsprop_options{.eps = 0}); }, "rmsprop: eps");
    expect_error<sg::value_error>([&] { so::adagrad(ps, so::adagrad_options{.eps = 0}); }, "adagrad: eps");
    expect_error<sg::value_error>([&] { so::adam(ps, so::adam_options{.eps = std::nan("")}); }, "adam: eps");
}

BOOST_AUTO_TEST_CASE(a_save_removes_temporaries_of_dead_writers) {
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_probe_tmp_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string path = (dir / "m.npz").string();
    // A pid that existed and is gone: a child that exited and was reaped.
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    const std::string dead = path + ".seqgrad-tmp." + std::to_string(child);
    const std::string alive = path + ".seqgrad-tmp." + std::to_string(::getppid());  // our parent lives on
    const std::string other = (dir / "other.npz.seqgrad-tmp.1").string();            // another file's
    const std::string dead_n = dead + ".4", alive_n = alive + ".4";                  // numbered per save
    // A user's file that only looks like a temporary (it was deleted as one, its "pid" dead).
    const std::string users = path + ".tmp." + std::to_string(child) + ".05";
    for (const auto& f : {dead, alive, other, dead_n, alive_n, users}) std::ofstream(f) << "half a checkpoint";
    sg::parameter_store ps;
    ps.add("w", xt::xarray<double>{1.0});
    sg::save_npz(ps, path);
    BOOST_TEST(!fs::exists(dead));
    BOOST_TEST(!fs::exists(dead_n));
    BOOST_TEST(fs::exists(alive));
    BOOST_TEST(fs::exists(alive_n));
    BOOST_TEST(fs::exists(other));
    BOOST_TEST(fs::exists(users));
    BOOST_TEST(fs::exists(path));
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
