// The OpenBLAS thread count is process-wide. Several threads each running a parallel backward at
// once must leave it as the caller set it (before: each region saved and restored it, so one
// region saved another's 1 and the count stayed at 1), with correct gradients.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include <seqgrad/seqgrad.hpp>
#include <xtensor/xview.hpp>

namespace sg = seqgrad;

namespace {
// Gradient of sum(tanh(x_i W)) over parts i, by data_parallel (a parallel region per call).
xt::xarray<double> parallel_grad(sg::parameter_store& ps, const sg::parameter& w, const xt::xarray<double>& x) {
    ps.zero_grad();
    sg::data_parallel(
        4,
        [&](sg::tape& t, std::size_t i) {
            auto xi = t.input(xt::xarray<double>(xt::view(x, xt::range(i * 2, i * 2 + 2), xt::all())));
            return sg::sum(sg::tanh(sg::matmul(xi, t.param(w))));
        },
        sg::dtype::f64);
    return w.grad_as_double();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(blas_threads)

BOOST_AUTO_TEST_CASE(concurrent_parallel_backwards_restore_the_blas_thread_count) {
    const std::size_t threads_before = sg::num_threads();
    sg::set_num_threads(4);
    sg::set_blas_threads(2);
    BOOST_REQUIRE(sg::blas_threads() == 2);

    xt::xarray<double> x = xt::zeros<double>({8, 6});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 0.1 * double(i % 7) - 0.3;
    xt::xarray<double> w0 = xt::zeros<double>({6, 5});
    for (std::size_t i = 0; i < w0.size(); ++i) w0.data()[i] = 0.05 * double(i % 5) - 0.1;
    // Reference: d/dW sum(tanh(x W)) = x^T (1 - tanh^2(x W)).
    xt::xarray<double> want = xt::zeros<double>({6, 5});
    for (std::size_t r = 0; r < 8; ++r)
        for (std::size_t c = 0; c < 5; ++c) {
            double z = 0;
            for (std::size_t k = 0; k < 6; ++k) z += x(r, k) * w0(k, c);
            const double d = 1 - std::tanh(z) * std::tanh(z);
            for (std::size_t k = 0; k < 6; ++k) want(k, c) += x(r, k) * d;
        }

    std::atomic<int> wrong{0};
    std::vector<std::thread> pool;
    for (int th = 0; th < 4; ++th)
        pool.emplace_back([&] {
            sg::parameter_store ps(sg::dtype::f64);
            auto w = ps.add("w", w0);
            for (int rep = 0; rep < 50; ++rep) {
                const auto g = parallel_grad(ps, w, x);
                for (std::size_t i = 0; i < g.size(); ++i)
                    if (std::abs(g.data()[i] - want.data()[i]) > 1e-12) ++wrong;
            }
        });
    for (auto& t : pool) t.join();
    BOOST_TEST(wrong.load() == 0);
    BOOST_TEST(sg::blas_threads() == 2);

    sg::set_blas_threads(0);  // the default policy
    sg::set_num_threads(threads_before);
}

BOOST_AUTO_TEST_CASE(overlapping_regions_keep_one_thread_inside_and_restore_the_count_after) {
    // Region A starts, region B starts, A ends while B runs, B ends. Saving and restoring per
    // region gave B two BLAS threads after A ended (under B's running tasks) and left 1 at the end.
    sg::set_blas_threads(2);
    struct region {  // what parallel_for brackets its work with
        region() { sg::detail::enter_parallel_region(); }
        ~region() { sg::detail::leave_parallel_region(); }
    };
    std::atomic<int> stage{0};
    std::atomic<int> inside_b_after_a{-1};
    auto wait_for = [&](int s) {
        for (int spin = 0; stage.load() < s && spin < 20000000; ++spin) std::this_thread::yield();
        BOOST_REQUIRE(stage.load() >= s);
    };
    std::thread a([&] {
        {
            region inside;
            stage = 1;    // A is inside
            wait_for(2);  // until B is inside
        }
        stage = 3;  // A has left
    });
    std::thread b([&] {
        wait_for(1);
        {
            region inside;
            stage = 2;
            wait_for(3);
            inside_b_after_a = sg::blas_threads();
        }
    });
    a.join();
    b.join();
    BOOST_TEST(inside_b_after_a.load() == 1);
    BOOST_TEST(sg::blas_threads() == 2);
    sg::set_blas_threads(0);  // the default policy
}

BOOST_AUTO_TEST_SUITE_END()
