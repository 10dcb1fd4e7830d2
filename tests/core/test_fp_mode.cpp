// set_flush_denormals: subnormal results become zero in the threads that run seqgrad's kernels
// (the recording thread, backward, the executor's threads), and gradual underflow comes back when
// it is turned off. Found as a 4-5x slowdown of a GRU language model once its gradients decayed
// into the subnormal range (bench/cells).
#include <boost/test/unit_test.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

namespace {
// Restores the defaults whatever a test does.
struct fp_defaults {
    std::size_t threads = sg::num_threads();
    ~fp_defaults() {
        sg::set_flush_denormals(true);
        sg::set_num_threads(threads);
    }
};

// a * a on a tape of type dt, read back as double.
double square_on_tape(sg::dtype dt, double a) {
    sg::tape t(dt);
    auto x = t.input(xt::xarray<double>{a});
    return t.value(x * x)(0);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(fp_mode)

BOOST_AUTO_TEST_CASE(subnormal_results_are_flushed_by_default_and_kept_when_turned_off) {
    fp_defaults restore;
    BOOST_TEST(sg::flush_denormals());
    // float: 1e-20^2 = 1e-40 is below FLT_MIN (1.18e-38); double: 1e-160^2 = 1e-320 below DBL_MIN.
    BOOST_TEST(square_on_tape(sg::dtype::f32, 1e-20) == 0.0);
    BOOST_TEST(square_on_tape(sg::dtype::f64, 1e-160) == 0.0);
    sg::set_flush_denormals(false);
    BOOST_TEST(!sg::flush_denormals());
    const double f = square_on_tape(sg::dtype::f32, 1e-20);
    BOOST_TEST(f > 0.99e-40);
    BOOST_TEST(f < 1.01e-40);
    const double d = square_on_tape(sg::dtype::f64, 1e-160);
    BOOST_TEST(d > 0.99e-320);
    BOOST_TEST(d < 1.01e-320);
    sg::set_flush_denormals(true);
    BOOST_TEST(square_on_tape(sg::dtype::f32, 1e-20) == 0.0);
}

BOOST_AUTO_TEST_CASE(the_gradient_flushes_too) {
    fp_defaults restore;
    for (bool on : {true, false}) {
        sg::set_flush_denormals(on);
        sg::tape t(sg::dtype::f32);
        auto x = t.input(xt::xarray<double>{1e-19}, true);
        t.backward(sg::sum(x * x * 1e-20));  // d/dx = 2e-39, subnormal in float
        const double g = t.grad(x)(0);
        if (on) BOOST_TEST(g == 0.0);
        else BOOST_TEST(std::abs(g - 2e-39) < 1e-41);
    }
}

BOOST_AUTO_TEST_CASE(the_executor_threads_follow_the_setting) {
    fp_defaults restore;
    sg::set_num_threads(2);
    for (bool on : {true, false, true}) {
        sg::set_flush_denormals(on);
        std::vector<float> out(64, -1);
        sg::detail::parallel_for(out.size(), [&](std::size_t i) {
            volatile float a = 1e-20f;
            out[i] = a * a;
        });
        // Bits, not a float comparison: this thread may itself still treat subnormals as zero.
        for (float v : out)
            BOOST_TEST(std::bit_cast<std::uint32_t>(v) == (on ? 0u : std::bit_cast<std::uint32_t>(1e-40f)));
    }
}

// TBB runs each task under the floating-point mode its arena captured when it started, over what
// seqgrad set in that thread: from the second region with one setting on, every item ran in the
// arena's first mode (flush on and off alike). Several regions per setting, and data_parallel's
// parts (each a tape's backward in an item): 4 parts of gradient 2e-39 sum to 8e-39 with flush
// off, every call (calls after the first read 4e-39: the worker's parts flushed).
BOOST_AUTO_TEST_CASE(every_region_of_the_executor_threads_follows_the_setting) {
    fp_defaults restore;
    sg::set_num_threads(2);
    (void)square_on_tape(sg::dtype::f32, 1e-20);
    for (bool on : {true, false, true, false}) {
        sg::set_flush_denormals(on);
        for (int round = 0; round < 4; ++round) {
            BOOST_TEST_CONTEXT("flush " << on << ", region " << round) {
                std::vector<float> out(64, -1);
                sg::detail::parallel_for(out.size(), [&](std::size_t i) {
                    volatile float a = 1e-20f;
                    out[i] = a * a;
                });
                std::size_t wrong = 0;
                for (float v : out)
                    wrong += std::bit_cast<std::uint32_t>(v) != (on ? 0u : std::bit_cast<std::uint32_t>(1e-40f));
                BOOST_TEST(wrong == 0u);
            }
        }
        sg::parameter_store ps(sg::dtype::f32);
        auto w = ps.add("w", xt::xarray<double>{1e-19});
        for (int call = 0; call < 3; ++call) {
            BOOST_TEST_CONTEXT("flush " << on << ", data_parallel call " << call) {
                ps.zero_grad();
                sg::data_parallel(4,
                                  [&](sg::tape& t, std::size_t) { return sg::sum(t.param(w) * t.param(w) * 1e-20); });
                const double g = w.grad_as_double()(0);
                if (on) BOOST_TEST(g == 0.0);
                else BOOST_TEST(std::abs(g - 8e-39) < 1e-41);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
