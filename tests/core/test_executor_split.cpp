// The executor splits one model's work across its threads by itself (large products by blocks of
// rows or columns, softmax rows, the rows of a recurrent step at B >= 8): the products must equal
// a reference for every transpose case and block edge, and a training step must give the same
// result at 2 threads as at 1 (within float rounding) and the same bits on every run at 2.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <seqgrad/core/blas.hpp>
#include <seqgrad/nn/cells.hpp>
#include <seqgrad/nn/lstm_layer.hpp>
#include <seqgrad/nn/unroll.hpp>
#include <seqgrad/ops/recurrent.hpp>
#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace nn = seqgrad::nn;

namespace {
struct thread_count {  // the executor at n threads with the default BLAS policy, restored after
    std::size_t before = sg::num_threads();
    explicit thread_count(std::size_t n) {
        sg::set_blas_threads(0);
        sg::set_num_threads(n);
    }
    ~thread_count() { sg::set_num_threads(before); }
};

// Max |C - ref| / (1 + |ref|) of detail::gemm against a double-precision loop.
// With add = false, C starts as NaN (arena memory is uninitialised) and beta is 0.
double gemm_error(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, bool add = true) {
    std::mt19937 rng(static_cast<unsigned>(m * 31 + n * 7 + k + ta * 2 + tb));
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> a(m * k), b(k * n), c(m * n, add ? 0.5f : std::nanf(""));
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    sg::detail::gemm<float>(ta, tb, m, n, k, 1.0f, a.data(), b.data(), add ? 1.0f : 0.0f, c.data());
    double worst = 0;
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double ref = add ? 0.5 : 0.0;
            for (std::size_t p = 0; p < k; ++p)
                ref += double(ta ? a[p * m + i] : a[i * k + p]) * double(tb ? b[j * k + p] : b[p * n + j]);
            const double e = std::abs(c[i * n + j] - ref) / (1 + std::abs(ref));
            if (!(e <= worst)) worst = e;  // a NaN stays (std::max would drop it)
        }
    return worst;
}

// One training step of embedding -> LSTM -> linear -> cross-entropy (B = 64: the steps are split
// by rows; the output and weight-gradient products and the softmax rows are split too), through
// nn::detail::lstm_layer or through nn::lstm_cell and nn::unroll (whose per-step product is split as a
// step's work and whose lstm_pointwise splits its rows). Returns the loss followed by every
// parameter gradient.
std::vector<float> lm_step(bool through_cell) {
    const std::size_t V = 400, E = 96, H = 64, T = 4, B = 64;
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(-0.3, 0.3);
    auto random = [&](std::vector<std::size_t> s) {
        xt::xarray<double> a = xt::zeros<double>(s);
        for (auto& v : a) v = u(rng);
        return a;
    };
    sg::parameter_store ps(sg::dtype::f32);
    auto emb = ps.add("emb", random({V, E})), w = ps.add("w", random({V, H})), bias = ps.add("b", random({V}));
    nn::lstm_cell cell(sg::parameter_scope(ps, "lstm"), E, H, rng);
    nn::detail::lstm_layer layer(cell);
    std::vector<int> ids(T * B), targets(T * B);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ids[i] = static_cast<int>(rng() % V);
        targets[i] = static_cast<int>(rng() % V);
    }
    sg::tape t(sg::dtype::f32);
    sg::expr hidden_all;
    if (through_cell) {
        const sg::expr x = sg::reshape(sg::gather_rows(t.param(emb), ids), {T, B, E});
        const auto hs = nn::hiddens(nn::unroll(t, cell, x, cell.initial_state(t, B)));
        hidden_all = sg::reshape(nn::stack_steps(hs), {T * B, H});
    } else {
        hidden_all = layer(sg::gather_rows(t.param(emb), ids), B).hidden_all();
    }
    const sg::expr logits = sg::matmul_add(t.param(bias), hidden_all, sg::T(t.param(w)));
    const sg::expr loss = sg::cross_entropy(logits, targets, sg::reduction::sum);
    t.backward(loss);
    std::vector<float> out = {static_cast<float>(t.item(loss))};
    for (const sg::parameter& p : ps.parameters()) {
        const auto& g = p.grad<float>();
        out.insert(out.end(), g.begin(), g.end());
    }
    return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(executor_split)

BOOST_AUTO_TEST_CASE(split_products_equal_a_reference_in_every_transpose_case) {
    thread_count two(2);
    // Split by rows (m >= n), by columns, uneven block edges (all above 1e7 flops), and one too small.
    const std::size_t shapes[][3] = {{300, 200, 90}, {70, 1001, 90},  {97, 64, 900},
                                     {64, 97, 900},  {20, 1000, 300}, {33, 40, 50}};
    for (const auto& s : shapes)
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb)
                BOOST_TEST(gemm_error(ta, tb, s[0], s[1], s[2]) < 2e-6 * std::sqrt(double(s[2])),
                           "error " << gemm_error(ta, tb, s[0], s[1], s[2]) << ", m " << s[0] << " n " << s[1] << " k "
                                    << s[2] << " ta " << ta << " tb " << tb);
}

// Products of 2..64 rows by a row-major matrix run on the library's own kernel (tiles of 8, 4, 2
// and 1 rows, blocks of 32 and 16 columns); equal to the reference with it on and off, with beta 0
// and 1, whole and split by columns (the last shape, at two threads).
BOOST_AUTO_TEST_CASE(small_products_on_the_own_kernel_equal_a_reference) {
    thread_count two(2);
    const std::size_t shapes[][3] = {{2, 16, 1},     {3, 48, 7},     {5, 112, 128}, {8, 32, 64}, {13, 80, 33},
                                     {31, 512, 128}, {64, 128, 512}, {65, 64, 9},   {9, 40, 10}, {32, 1024, 400}};
    const bool before = sg::detail::small_gemm_kernels();
    for (const bool on : {true, false}) {
        sg::detail::set_small_gemm_kernels(on);
        for (const auto& s : shapes)
            for (const bool add : {true, false})
                BOOST_TEST(gemm_error(false, false, s[0], s[1], s[2], add) < 2e-6 * std::sqrt(double(s[2])),
                           "m " << s[0] << " n " << s[1] << " k " << s[2] << " add " << add << " own " << on);
    }
    sg::detail::set_small_gemm_kernels(before);
}

// Matrix-vector products (m or n = 1: a recurrent step at B = 1) run on the own GEMV kernels, the
// float one on AVX-512 in blocks of 8 rows where the inner size is a multiple of 16: rows and
// inner sizes on and off those blocks, every transpose case, beta 0 and 1.
BOOST_AUTO_TEST_CASE(matrix_vector_products_equal_a_reference) {
    const std::size_t sizes[][2] = {{512, 128}, {1024, 256}, {8, 16}, {13, 16}, {7, 32}, {20, 24}, {1, 5}, {37, 100}};
    for (const auto& s : sizes)
        for (const bool ta : {false, true})
            for (const bool tb : {false, true})
                for (const bool add : {true, false}) {
                    BOOST_TEST(gemm_error(ta, tb, 1, s[0], s[1], add) < 2e-6 * std::sqrt(double(s[1])),
                               "m 1 n " << s[0] << " k " << s[1] << " ta " << ta << " tb " << tb << " add " << add);
                    BOOST_TEST(gemm_error(ta, tb, s[0], 1, s[1], add) < 2e-6 * std::sqrt(double(s[1])),
                               "m " << s[0] << " n 1 k " << s[1] << " ta " << ta << " tb " << tb << " add " << add);
                }
}

// Products from a weight packed in column panels (detail::pack_panels, both stored layouts, panels
// of 32 and a last one of 16 floats, 16 and 8 doubles) give the same bits as the own kernel on the
// row-major weight, whole (1 and 2 threads, split into blocks of panels above 1e7 flops), over
// a range of columns, and with the addend read from another matrix; a column count the panels
// cannot cover is refused by name.
template <class T>
void check_packed(std::size_t m, std::size_t n, std::size_t k, bool trans) {
    std::mt19937 rng(static_cast<unsigned>(m * 31 + n * 7 + k + trans));
    std::uniform_real_distribution<T> u(-1, 1);
    std::vector<T> a(m * k), b(k * n), bt(k * n), p(k * n), ref(m * n), c(m * n);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    for (std::size_t q = 0; q < k; ++q)
        for (std::size_t j = 0; j < n; ++j) bt[j * k + q] = b[q * n + j];
    sg::detail::pack_panels<T>(trans, k, n, trans ? bt.data() : b.data(), p.data());
    std::vector<T> ref0, ref1;
    for (const T beta : {T(0), T(1)}) {
        for (std::size_t i = 0; i < m * n; ++i) ref[i] = c[i] = T(0.25) * T(i % 5);
        sg::detail::gemm_packed<T>(m, n, k, a.data(), p.data(), beta, c.data());
        if (m == 1) {  // the own kernel takes 2 rows or more: against a plain loop, to rounding
            for (std::size_t j = 0; j < n; ++j) {
                T s = 0;
                for (std::size_t q = 0; q < k; ++q) s += a[q] * b[q * n + j];
                BOOST_TEST(std::abs(c[j] - (beta == T(1) ? ref[j] + s : s)) < 1e-5);
            }
            continue;
        }
        BOOST_REQUIRE(
            sg::detail::small_gemm<T>(false, false, m, n, k, 1, a.data(), k, b.data(), n, beta, ref.data(), n));
        BOOST_TEST((std::memcmp(ref.data(), c.data(), m * n * sizeof(T)) == 0),
                   "m " << m << " n " << n << " k " << k << " trans " << trans << " beta " << beta);
        if (beta == T(0)) ref0 = ref;
        else ref1 = ref;
    }
    if (m > 1) {  // C = S + A op(B) with S another matrix: the bits of beta = 1 over a copy of S
        std::vector<T> s(m * n), out(m * n, T(-3));
        for (std::size_t i = 0; i < m * n; ++i) s[i] = T(0.25) * T(i % 5);
        sg::detail::small_gemm_packed<T>(m, n, k, a.data(), k, p.data(), 0, n, T(0), out.data(), n, s.data(), n);
        BOOST_TEST((std::memcmp(ref1.data(), out.data(), m * n * sizeof(T)) == 0), "addend m " << m << " n " << n);
        // A row of S added to every row (lds 0, a bias), through gemm_packed (split across threads
        // when large): the bits of beta = 1 over C filled with that row.
        std::vector<T> row(n), filled(m * n), biased(m * n, T(-3));
        for (std::size_t j = 0; j < n; ++j) row[j] = T(0.5) - T(0.125) * T(j % 7);
        for (std::size_t i = 0; i < m * n; ++i) filled[i] = row[i % n];
        sg::detail::gemm_packed<T>(m, n, k, a.data(), p.data(), T(1), filled.data());
        sg::detail::gemm_packed<T>(m, n, k, a.data(), p.data(), T(0), biased.data(), row.data(), 0);
        BOOST_TEST((std::memcmp(filled.data(), biased.data(), m * n * sizeof(T)) == 0), "bias m " << m << " n " << n);
    }
    // Columns [cw, n) only: the others keep their values.
    constexpr std::size_t cw = 128 / sizeof(T);
    if (m > 1 && n > cw) {
        std::vector<T> part(m * n, T(7));
        sg::detail::small_gemm_packed<T>(m, n, k, a.data(), k, p.data(), cw, n, T(0), part.data(), n);
        for (std::size_t r = 0; r < m; ++r) {
            BOOST_TEST(part[r * n] == T(7));
            BOOST_TEST((std::memcmp(part.data() + r * n + cw, ref0.data() + r * n + cw, (n - cw) * sizeof(T)) == 0));
        }
    }
}

BOOST_AUTO_TEST_CASE(products_from_a_packed_weight_equal_the_own_kernel_bitwise) {
    for (const std::size_t threads : {1u, 2u}) {
        thread_count tc(threads);
        const std::size_t shapes[][3] = {{1, 48, 7},      {2, 16, 1},      {5, 112, 128},
                                         {20, 1024, 256}, {10, 256, 1024}, {64, 80, 33}};
        for (const auto& s : shapes)
            for (const bool trans : {false, true}) {
                check_packed<float>(s[0], s[1], s[2], trans);
                check_packed<double>(s[0], s[1], s[2], trans);
            }
    }
    std::vector<float> w(24 * 3), p(24 * 3);
    BOOST_CHECK_EXCEPTION(sg::detail::pack_panels<float>(false, 3, 24, w.data(), p.data()), sg::value_error,
                          [](const sg::value_error& e) {
                              return std::string(e.what()).find(
                                         "pack_panels: 24 columns (expected a multiple of 16)") != std::string::npos;
                          });
}

BOOST_AUTO_TEST_CASE(products_inside_a_parallel_region_stay_whole_and_correct) {
    thread_count two(2);
    std::vector<double> err(4);
    sg::detail::parallel_for(4, [&](std::size_t i) { err[i] = gemm_error(i & 1, i >> 1, 300, 200, 200); });
    for (double e : err) BOOST_TEST(e < 1e-5);
    BOOST_TEST(sg::detail::split_ways() == 2u);
    std::size_t inside = 0;
    sg::detail::parallel_for(2, [&](std::size_t i) {
        if (i == 0) inside = sg::detail::split_ways();
    });
    BOOST_TEST(inside == 1u);
}

BOOST_AUTO_TEST_CASE(parallel_rows_covers_every_row_once_in_blocks_fixed_by_the_count) {
    thread_count two(2);
    std::vector<int> hits(1000, 0);
    std::vector<std::pair<std::size_t, std::size_t>> blocks(2);
    sg::detail::parallel_rows(1000, 1000.0, [&](std::size_t lo, std::size_t hi) {
        blocks[lo == 0 ? 0 : 1] = {lo, hi};
        for (std::size_t r = lo; r < hi; ++r) hits[r]++;
    });
    BOOST_TEST(hits == std::vector<int>(1000, 1));
    BOOST_TEST(blocks[0].second == 500u);
    BOOST_TEST(blocks[1].first == 500u);
    int calls = 0;  // too little work: one block on the calling thread
    sg::detail::parallel_rows(10, 1.0, [&](std::size_t lo, std::size_t hi) { calls += lo == 0 && hi == 10; });
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(a_training_step_at_two_threads_matches_one_thread_and_repeats_bitwise) {
    for (const bool through_cell : {false, true}) {
        BOOST_TEST_CONTEXT((through_cell ? "lstm_cell through unroll" : "lstm_layer")) {
            std::vector<float> one, two_a, two_b;
            {
                thread_count t(1);
                one = lm_step(through_cell);
            }
            {
                thread_count t(2);
                two_a = lm_step(through_cell);
                two_b = lm_step(through_cell);
            }
            BOOST_REQUIRE(one.size() == two_a.size());
            BOOST_TEST(std::memcmp(two_a.data(), two_b.data(), two_a.size() * sizeof(float)) == 0);
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < one.size(); ++i) {
                worst = std::max(worst, double(std::abs(one[i] - two_a[i])));
                scale = std::max(scale, double(std::abs(one[i])));
            }
            BOOST_TEST_MESSAGE("1 vs 2 threads: max difference " << worst << ", max magnitude " << scale);
            BOOST_TEST(worst <= 1e-5 * scale, "max difference " << worst << " against max magnitude " << scale);
            BOOST_TEST(scale > 0);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
