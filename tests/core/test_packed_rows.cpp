// A product of many rows by the transpose of a weight small enough to stay in L2 (a sequence's
// input projection at H = 128) runs on the own kernel from the tape's packed copy of the weight,
// its addend added in the product's store (tape::transposed_product, detail::gemm_packed in blocks
// of rows): the value and every gradient equal the plain graph's (OpenBLAS), the same bits at 1
// and 2 threads, and a weight past the limit stays on OpenBLAS. Also detail::gemm's own kernels
// against double loops: many rows by a small B, and the batch-1 products (GEMV).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <seqgrad/core/blas.hpp>
#include <seqgrad/seqgrad.hpp>

#include "../test_util.hpp"

namespace sg = seqgrad;
using namespace seqgrad_test;

namespace {
struct outcome {
    xt::xarray<double> y, dx, dw, dc;
    std::size_t transposed = 0;
};

// y = c + x w^T for x [m, k], w [n, k], c a row [n] (a bias) or full [m, n]; loss sum(y * r).
outcome grads(sg::dtype dt, bool optimize, std::size_t m, std::size_t n, std::size_t k, bool row_addend) {
    std::mt19937_64 rng(m * 131 + n * 17 + k);
    sg::parameter_store ps(dt);
    const sg::parameter x = ps.add("x", random_array({m, k}, rng));
    const sg::parameter w = ps.add("w", random_array({n, k}, rng, 0.3));
    const sg::parameter c = ps.add("c", row_addend ? random_array({n}, rng) : random_array({m, n}, rng));
    const xt::xarray<double> r = random_array({m, n}, rng);
    sg::tape t(dt);
    t.set_optimize(optimize);
    const sg::expr y = sg::matmul_add(t.param(c), t.param(x), t.param(w), false, true);
    t.backward(sg::sum(sg::mul(y, t.input(r))));
    return {t.value(y), t.grad(t.param(x)), t.grad(t.param(w)), t.grad(t.param(c)),
            t.optimizations().products_transposed};
}
}  // namespace

BOOST_AUTO_TEST_CASE(many_rows_by_a_small_transposed_weight_equal_the_plain_graph) {
    // 200 rows: three blocks of 64 and a rest of 8; n = 48: two panels and a half-width one (f32).
    for (const bool row : {true, false})
        for (const sg::dtype dt : {sg::dtype::f64, sg::dtype::f32}) {
            const double tol = dt == sg::dtype::f64 ? 1e-12 : 1e-5;
            const outcome on = grads(dt, true, 200, 48, 24, row), off = grads(dt, false, 200, 48, 24, row);
            BOOST_TEST_CONTEXT((row ? "bias row" : "full addend") << (dt == sg::dtype::f64 ? ", f64" : ", f32")) {
                BOOST_TEST(on.transposed == 1u);  // the fast path ran
                BOOST_TEST(off.transposed == 0u);
                BOOST_TEST(max_diff(on.y, off.y) <= tol * (1 + xt::amax(xt::abs(off.y))()));
                BOOST_TEST(max_diff(on.dx, off.dx) <= tol * (1 + xt::amax(xt::abs(off.dx))()));
                BOOST_TEST(max_diff(on.dw, off.dw) <= tol * (1 + xt::amax(xt::abs(off.dw))()));
                BOOST_TEST(max_diff(on.dc, off.dc) <= tol * (1 + xt::amax(xt::abs(off.dc))()));
            }
        }
}

BOOST_AUTO_TEST_CASE(rows_split_across_threads_give_the_same_bits) {
    // 2,048 x 512 x 128 (char_b32's projection): large enough that the row blocks are split.
    const std::size_t before = sg::num_threads();
    sg::set_blas_threads(0);
    sg::set_num_threads(1);
    const outcome one = grads(sg::dtype::f32, true, 2048, 512, 128, true);
    sg::set_num_threads(2);
    const outcome two = grads(sg::dtype::f32, true, 2048, 512, 128, true);
    sg::set_num_threads(before);
    BOOST_TEST(one.transposed == 1u);
    BOOST_TEST(max_diff(one.y, two.y) == 0.0);
}

BOOST_AUTO_TEST_CASE(a_weight_past_the_limit_stays_on_blas) {
    // f32 [512, 320]: 640 KB, past detail::packed_rows_max_bytes; at 64 rows it is a step's product.
    static_assert(512 * 320 * sizeof(float) > sg::detail::packed_rows_max_bytes);
    BOOST_TEST(grads(sg::dtype::f32, true, 100, 512, 320, true).transposed == 0u);
    BOOST_TEST(grads(sg::dtype::f32, true, 64, 512, 320, true).transposed == 1u);
    // f64 [256, 256]: 512 KB, at the limit.
    BOOST_TEST(grads(sg::dtype::f64, true, 100, 256, 256, true).transposed == 1u);
}

// detail::gemm's products of many rows by a plain B (G W at a layer's input gradient) on the own
// kernel, against a double loop: beta 0 into uninitialised (NaN) memory and beta 1, a row count
// with a partial block, a half-width panel; and the same within rounding with the kernels off
// (OpenBLAS).
BOOST_AUTO_TEST_CASE(gemm_of_many_rows_by_a_small_b) {
    const std::size_t m = 300, n = 48, k = 40;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> a(m * k), b(k * n);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    for (const bool on : {true, false})
        for (const float beta : {0.0f, 1.0f}) {
            sg::detail::set_small_gemm_kernels(on);
            std::vector<float> c(m * n, beta == 0 ? std::nanf("") : 0.25f);
            sg::detail::gemm<float>(false, false, m, n, k, 1.0f, a.data(), b.data(), beta, c.data());
            sg::detail::set_small_gemm_kernels(true);
            double worst = 0;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < n; ++j) {
                    double ref = beta == 0 ? 0.0 : 0.25;
                    for (std::size_t p = 0; p < k; ++p) ref += double(a[i * k + p]) * double(b[p * n + j]);
                    const double e = std::abs(c[i * n + j] - ref) / (1 + std::abs(ref));
                    if (!(e <= worst)) worst = e;  // a NaN stays (std::max would drop it)
                }
            BOOST_TEST(worst < 1e-5, (on ? "own kernel" : "OpenBLAS") << ", beta " << beta << ": " << worst);
        }
}

// detail::gemm's batch-1 products (m = 1 or n = 1: a recurrent step's product at B = 1, on the
// library's GEMV kernels, vectorised per target) against a double loop, in the four layouts that
// reach them, at row counts with and without whole blocks of 8 rows and lengths with and without
// whole vectors; beta 0 into NaN memory and beta 1.
BOOST_AUTO_TEST_CASE(gemv_products_equal_a_double_loop) {
    const std::size_t shapes[][2] = {{512, 128}, {20, 24}, {13, 7}, {8, 8}};
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1, 1);
    for (const auto& s : shapes) {
        const std::size_t rows = s[0], cols = s[1];
        std::vector<float> w(rows * cols), xc(cols), xr(rows);
        for (auto& v : w) v = u(rng);
        for (auto& v : xc) v = u(rng);
        for (auto& v : xr) v = u(rng);
        for (const float beta : {0.0f, 1.0f})
            for (int layout = 0; layout < 4; ++layout) {
                // 0: x[1, cols] w^T; 1: w [rows, cols] x[cols, 1] (both w x); 2: x[1, rows] w; 3: w^T x[rows, 1].
                const bool wx = layout < 2;
                const std::size_t len = wx ? rows : cols;
                std::vector<float> c(len, beta == 0 ? std::nanf("") : 0.25f);
                const float* x = wx ? xc.data() : xr.data();
                if (layout == 0) sg::detail::gemm<float>(false, true, 1, rows, cols, 1.0f, x, w.data(), beta, c.data());
                if (layout == 1)
                    sg::detail::gemm<float>(false, false, rows, 1, cols, 1.0f, w.data(), x, beta, c.data());
                if (layout == 2)
                    sg::detail::gemm<float>(false, false, 1, cols, rows, 1.0f, x, w.data(), beta, c.data());
                if (layout == 3) sg::detail::gemm<float>(true, false, cols, 1, rows, 1.0f, w.data(), x, beta, c.data());
                double worst = 0;
                for (std::size_t i = 0; i < len; ++i) {
                    double ref = beta == 0 ? 0.0 : 0.25;
                    if (wx)
                        for (std::size_t p = 0; p < cols; ++p) ref += double(w[i * cols + p]) * double(xc[p]);
                    else
                        for (std::size_t p = 0; p < rows; ++p) ref += double(w[p * cols + i]) * double(xr[p]);
                    const double e = std::abs(c[i] - ref) / (1 + std::abs(ref));
                    if (!(e <= worst)) worst = e;  // a NaN stays
                }
                BOOST_TEST(worst < 1e-5,
                           rows << " x " << cols << ", layout " << layout << ", beta " << beta << ": " << worst);
            }
    }
}
