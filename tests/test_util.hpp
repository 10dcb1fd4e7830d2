#pragma once
// Helpers shared by the test suites: literal and random arrays, and element-wise comparisons.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>

namespace seqgrad_test {

/// A row-major array of the given shape (braced xarray literals of one column are ambiguous).
inline xt::xarray<double> arr(const std::vector<std::size_t>& shp, const std::vector<double>& values) {
    xt::xarray<double> v = xt::zeros<double>(shp);
    std::copy(values.begin(), values.end(), v.begin());
    return v;
}

/// A column [n, 1].
inline xt::xarray<double> col(std::initializer_list<double> v) {
    xt::xarray<double> a = xt::zeros<double>({v.size(), std::size_t(1)});
    std::copy(v.begin(), v.end(), a.begin());
    return a;
}

/// Entries drawn from U(-scale, scale).
inline xt::xarray<double> random_array(const std::vector<std::size_t>& shp, std::mt19937_64& rng, double scale = 1.0) {
    std::uniform_real_distribution<double> u(-scale, scale);
    xt::xarray<double> v = xt::zeros<double>(shp);
    for (auto& x : v) x = u(rng);
    return v;
}

/// Entries drawn from N(0, stddev^2).
inline xt::xarray<double> random_normal(const std::vector<std::size_t>& shp, std::mt19937_64& rng,
                                        double stddev = 1.0) {
    std::normal_distribution<double> d(0.0, stddev);
    xt::xarray<double> v = xt::zeros<double>(shp);
    for (auto& x : v) x = d(rng);
    return v;
}

/// max |a - b| over all entries (0 for empty arrays); the shapes must agree.
inline double max_diff(const xt::xarray<double>& a, const xt::xarray<double>& b) {
    BOOST_REQUIRE(a.shape() == b.shape());
    return a.size() ? xt::amax(xt::abs(a - b))() : 0.0;
}

/// Same shape and every |a - b| <= tol.
inline bool all_close(const xt::xarray<double>& a, const xt::xarray<double>& b, double tol) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::abs(a.data()[i] - b.data()[i]) > tol) return false;
    return true;
}

/// Checks the shapes and every entry, naming the first entries that differ by more than tol.
inline void expect_near(const xt::xarray<double>& got, const xt::xarray<double>& want, double tol = 1e-12) {
    BOOST_TEST_REQUIRE(got.shape() == want.shape());
    for (std::size_t i = 0; i < got.size(); ++i)
        BOOST_TEST(std::abs(got.data()[i] - want.data()[i]) <= tol,
                   "entry " << i << ": " << got.data()[i] << " vs " << want.data()[i]);
}

/// Two runs of one model agree: the loss, and each gradient within tol scaled by 1 + its largest
/// entry in `want`; and the gradients are not all trivially zero.
inline void expect_same_run(double got_loss, const std::vector<xt::xarray<double>>& got, double want_loss,
                            const std::vector<xt::xarray<double>>& want, double tol) {
    BOOST_TEST(std::abs(got_loss - want_loss) <= tol * (1 + std::abs(want_loss)));
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    double total = 0;
    for (std::size_t k = 0; k < got.size(); ++k) {
        const double scale = 1 + xt::amax(xt::abs(want[k]))();
        BOOST_TEST(xt::amax(xt::abs(got[k] - want[k]))() <= tol * scale, "gradient " << k);
        total += xt::sum(xt::abs(want[k]))();
    }
    BOOST_TEST(total > 1.0);
}
/// The same for two outcomes of a test's run (any type with loss and grads).
template <class Outcome>
void expect_same_run(const Outcome& got, const Outcome& want, double tol) {
    expect_same_run(got.loss, got.grads, want.loss, want.grads, tol);
}

/// f() throws an E whose message contains needle.
template <class E, class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        BOOST_FAIL("expected an error mentioning '" + needle + "'");
    } catch (const E& e) {
        BOOST_TEST_INFO(e.what());
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos);
    }
}

}  // namespace seqgrad_test
