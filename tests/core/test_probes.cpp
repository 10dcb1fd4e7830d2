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
#include <string>

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
    const std::string dead = path + ".tmp." + std::to_string(child);
    const std::string alive = path + ".tmp." + std::to_string(::getppid());  // our parent lives on
    const std::string other = (dir / "other.npz.tmp.1").string();            // another file's
    const std::string dead_n = dead + ".4", alive_n = alive + ".4";          // numbered per save
    for (const auto& f : {dead, alive, other, dead_n, alive_n}) std::ofstream(f) << "half a checkpoint";
    sg::parameter_store ps;
    ps.add("w", xt::xarray<double>{1.0});
    sg::save_npz(ps, path);
    BOOST_TEST(!fs::exists(dead));
    BOOST_TEST(!fs::exists(dead_n));
    BOOST_TEST(fs::exists(alive));
    BOOST_TEST(fs::exists(alive_n));
    BOOST_TEST(fs::exists(other));
    BOOST_TEST(fs::exists(path));
    fs::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
