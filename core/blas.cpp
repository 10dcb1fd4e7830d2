#include "blas.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include <cblas.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace seqgrad {

const char* blas_core_name() { return openblas_get_corename(); }

namespace detail {

namespace {
// Batch-1 products (a step of a recurrent net at B = 1) are bound by reading the weight from L2.
// These kernels beat OpenBLAS's GEMV by ~1.4x at H = 128 (fixed-width lanes that GCC keeps in
// vector registers); larger products go to OpenBLAS.
constexpr std::size_t own_gemv_max = std::size_t(1) << 20;  // entries of the matrix

// y[M] += W[M, N] x[N]: four row dot products at a time, each in L independent lanes.
template <class T>
void gemv_rows_add(std::size_t m, std::size_t n, const T* __restrict w, const T* __restrict x, T* __restrict y) {
    constexpr std::size_t L = 64 / sizeof(T);
    const std::size_t nl = n / L * L;
    std::size_t r = 0;
    for (; r + 4 <= m; r += 4) {
        T a0[L] = {}, a1[L] = {}, a2[L] = {}, a3[L] = {};
        const T *w0 = w + r * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        for (std::size_t j = 0; j < nl; j += L)
            for (std::size_t l = 0; l < L; ++l) {
                const T xv = x[j + l];
                a0[l] += w0[j + l] * xv;
                a1[l] += w1[j + l] * xv;
                a2[l] += w2[j + l] * xv;
                a3[l] += w3[j + l] * xv;
            }
        // A halving tree keeps the lanes independent at every level; a serial sum over the lanes
        // is an L-deep chain of dependent adds per row, which at n = H = 128 costs as much as the
        // products (a step's h W_hh^T has 4H short rows).
        for (std::size_t h = L / 2; h >= 1; h /= 2)
            for (std::size_t l = 0; l < h; ++l) {
                a0[l] += a0[l + h];
                a1[l] += a1[l + h];
                a2[l] += a2[l + h];
                a3[l] += a3[l + h];
            }
        T s0 = a0[0], s1 = a1[0], s2 = a2[0], s3 = a3[0];
        for (std::size_t j = nl; j < n; ++j) {
            s0 += w0[j] * x[j];
            s1 += w1[j] * x[j];
            s2 += w2[j] * x[j];
            s3 += w3[j] * x[j];
        }
        y[r] += s0;
        y[r + 1] += s1;
        y[r + 2] += s2;
        y[r + 3] += s3;
    }
    for (; r < m; ++r) {
        T s = 0;
        for (std::size_t j = 0; j < n; ++j) s += w[r * n + j] * x[j];
        y[r] += s;
    }
}

#if defined(__AVX512F__)
// The four accumulators' sums in one vector (entries 0, 4, 8, 12): 3 shuffles and adds per level instead of a
// horizontal sum each. Reducing each row's lanes separately (through memory, as GCC compiles the
// generic version's loops over lanes) cost as much as the products at n = 128.
// (The masked forms with a full mask: GCC 12 warns that the unmasked ones' undefined source "may be
// used uninitialized".)
inline __m512 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    constexpr __mmask16 all = 0xFFFF;
    const __m512 x = _mm512_add_ps(_mm512_mask_shuffle_f32x4(a0, all, a0, a1, 0x44),
                                   _mm512_mask_shuffle_f32x4(a0, all, a0, a1, 0xEE));
    const __m512 y = _mm512_add_ps(_mm512_mask_shuffle_f32x4(a2, all, a2, a3, 0x44),
                                   _mm512_mask_shuffle_f32x4(a2, all, a2, a3, 0xEE));
    __m512 z = _mm512_add_ps(_mm512_mask_shuffle_f32x4(x, all, x, y, 0x88),
                             _mm512_mask_shuffle_f32x4(x, all, x, y, 0xDD));  // a row a lane
    z = _mm512_add_ps(z, _mm512_mask_shuffle_ps(z, all, z, z, _MM_SHUFFLE(1, 0, 3, 2)));
    z = _mm512_add_ps(z, _mm512_mask_shuffle_ps(z, all, z, z, _MM_SHUFFLE(2, 3, 0, 1)));
    return z;  // the sums in entries 0, 4, 8 and 12
}

// The float GEMV on AVX-512, eight rows at a time: 1.5x the generic version at H = 128 and
// 1.3x at 256 (w_hh's [4H, H] at B = 1; a driver, one thread).
inline void gemv_rows_add(std::size_t m, std::size_t n, const float* __restrict w, const float* __restrict x,
                          float* __restrict y) {
    std::size_t r = 0;
    if (n % 16 == 0)
        for (; r + 8 <= m; r += 8) {
            const float* wr = w + r * n;
            __m512 a[8];
            for (auto& v : a) v = _mm512_setzero_ps();
            for (std::size_t j = 0; j < n; j += 16) {
                const __m512 xv = _mm512_loadu_ps(x + j);
                for (std::size_t q = 0; q < 8; ++q) a[q] = _mm512_fmadd_ps(_mm512_loadu_ps(wr + q * n + j), xv, a[q]);
            }
            const __m512i firsts = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
            const __m512 sums = _mm512_permutex2var_ps(sum4(a[0], a[1], a[2], a[3]), firsts,
                                                       sum4(a[4], a[5], a[6], a[7]));
            _mm512_mask_storeu_ps(y + r, 0xFF, _mm512_add_ps(_mm512_maskz_loadu_ps(0xFF, y + r), sums));
        }
    if (r < m) gemv_rows_add<float>(m - r, n, w + r * n, x, y + r);
}
#elif defined(__AVX2__) && defined(__FMA__)
// The same on AVX2, eight rows at a time, the eight rows' lanes summed by three levels of hadd
// and one cross-half add: 38-41 GFLOP/s at w_hh [512, 128] (H 128, B = 1) and 34 at [1024, 256]
// on a 2-core AVX2 EPYC, where the generic version's halving tree of 16-lane arrays ran 24 and 26.
inline void gemv_rows_add(std::size_t m, std::size_t n, const float* __restrict w, const float* __restrict x,
                          float* __restrict y) {
    std::size_t r = 0;
    if (n % 8 == 0)
        for (; r + 8 <= m; r += 8) {
            const float* wr = w + r * n;
            __m256 a[8];
            for (auto& v : a) v = _mm256_setzero_ps();
            for (std::size_t j = 0; j < n; j += 8) {
                const __m256 xv = _mm256_loadu_ps(x + j);
                for (std::size_t q = 0; q < 8; ++q) a[q] = _mm256_fmadd_ps(_mm256_loadu_ps(wr + q * n + j), xv, a[q]);
            }
            const __m256 s03 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
            const __m256 s47 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
            // s03: rows 0-3's sums over lanes 0-3, then over lanes 4-7; s47 the same for rows 4-7.
            const __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(s03, s47, 0x20),
                                              _mm256_permute2f128_ps(s03, s47, 0x31));
            _mm256_storeu_ps(y + r, _mm256_add_ps(_mm256_loadu_ps(y + r), sums));
        }
    if (r < m) gemv_rows_add<float>(m - r, n, w + r * n, x, y + r);
}
#endif

// y[N] += x[M] W[M, N], in blocks of C columns whose sums stay in registers over all M rows (W is
// read once, y once).
template <std::size_t C, class T>
void gemv_cols_block(std::size_t m, std::size_t n, std::size_t j0, const T* __restrict w, const T* __restrict x,
                     T* __restrict y) {
    T a[C] = {};
    for (std::size_t r = 0; r < m; ++r) {
        const T xr = x[r];
        const T* __restrict wr = w + r * n + j0;
        for (std::size_t l = 0; l < C; ++l) a[l] += xr * wr[l];
    }
    for (std::size_t l = 0; l < C; ++l) y[j0 + l] += a[l];
}

template <class T>
void gemv_cols_add(std::size_t m, std::size_t n, const T* w, const T* x, T* y) {
    constexpr std::size_t C = 256 / sizeof(T), L = 64 / sizeof(T);
    std::size_t j0 = 0;
    for (; j0 + C <= n; j0 += C) gemv_cols_block<C>(m, n, j0, w, x, y);
    for (; j0 + L <= n; j0 += L) gemv_cols_block<L>(m, n, j0, w, x, y);
    for (; j0 < n; ++j0) gemv_cols_block<1>(m, n, j0, w, x, y);
}

// One OpenBLAS call with explicit leading dimensions (a block of a larger product).
template <class T>
void blas_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
               const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    if (small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
    // For beta = 0 OpenBLAS clears C in a pass of its own (sgemm_beta, 4% of char_b1's training
    // step): cleared here and added to (beta = 1), the same bits in 84% of the time at 512 x 128 x 64
    // (A transposed, dW_hh at char_b1), 98% at word_b20's output-layer products.
    if (beta == T(0)) {
        if (ldc == n) std::memset(c, 0, m * n * sizeof(T));
        else
            for (std::size_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, n * sizeof(T));
        beta = T(1);
    }
    const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    const int LDA = static_cast<int>(lda), LDB = static_cast<int>(ldb), LDC = static_cast<int>(ldc);
    if constexpr (std::is_same_v<T, float>)
        cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
    else cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, LDA, b, LDB, beta, c, LDC);
}

// The per-step recurrent products at B >= 8 are split from step_split_min_flops (split_min_flops
// for the others: core/blas.hpp): inside a time step's node (detail::step_work) or by lstm_step
// itself.
constexpr double step_split_min_flops = 2e6;
// Rows of a packed product taken at a time (gemm_packed with many rows): a recurrent step's size.
constexpr std::size_t row_block = 64;
// From this many rows a product by a small B packs it for the own kernel (detail::gemm): fewer
// rows do not repay the packing.
constexpr std::size_t packed_rows_min_m = 256;
// Blocks start at multiples of this (the kernels' register tiles), so each block runs full tiles.
constexpr std::size_t split_align = 32;

// The executor's share of a product: C split into `ways` blocks of rows (m >= n: B is packed by
// every block, A split) or of columns, one single-threaded BLAS call each. Each entry of C is
// still one dot product over all of k, but OpenBLAS may sum an entry near a block's edge in
// another order: split at row 256, 512 x 128 x 64 (A transposed) differed from the whole product
// in the last bit of 5% of its entries. The same on every run at a given thread count.
template <class T>
bool split_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, const T* b, T beta,
                T* c) {
    if (2.0 * double(m) * double(n) * double(k) < (step_work::active ? step_split_min_flops : split_min_flops))
        return false;
    const bool rows = m >= n;
    const std::size_t d = rows ? m : n, ways = std::min(split_ways(), d / split_align);
    if (ways < 2) return false;
    const std::size_t lda = ta ? m : k, ldb = tb ? k : n;
    parallel_for(ways, [&](std::size_t p) {
        const auto bound = [&](std::size_t q) {
            return q == ways ? d : (d * q / ways + split_align / 2) / split_align * split_align;
        };
        const std::size_t lo = bound(p), hi = bound(p + 1);
        if (rows) blas_gemm(ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + lo * k, lda, b, ldb, beta, c + lo * n, n);
        else blas_gemm(ta, tb, m, hi - lo, k, alpha, a, lda, tb ? b + lo * k : b + lo, ldb, beta, c + lo, n);
    });
    return true;
}

// A product of many rows by a plain B small enough to stay in L2 (a layer's input gradient
// G W_ih at H = 128): on the own kernel in blocks of rows, which with the rows coming from memory
// ran 17% faster than OpenBLAS here, packing included (2,048 x 512 x 128: 135 against 116
// GFLOP/s). At H = 256 (a 1 MB B) it won alone by 5% and lost 1.5% of a layer's step.
template <class T>
bool packed_rows_serve(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, T beta) {
    return !ta && !tb && alpha == T(1) && (beta == T(0) || beta == T(1)) && m >= packed_rows_min_m &&
           n % (64 / sizeof(T)) == 0 && k * n * sizeof(T) <= packed_rows_max_bytes && small_gemm_kernels();
}

template <class T>
void gemv(bool trans, int rows, int cols, T alpha, const T* a, const T* x, T beta, T* y) {
    const auto t = trans ? CblasTrans : CblasNoTrans;
    if constexpr (std::is_same_v<T, float>) cblas_sgemv(CblasRowMajor, t, rows, cols, alpha, a, cols, x, 1, beta, y, 1);
    else cblas_dgemv(CblasRowMajor, t, rows, cols, alpha, a, cols, x, 1, beta, y, 1);
}
}  // namespace

template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, const T* b, T beta,
          T* c) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (std::size_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
        return;
    }
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    const bool executor = executor_threads_blas();  // first: it sets OpenBLAS to one thread
    // Arena memory is uninitialised; BLAS scaling by beta = 0 is not guaranteed to clear a NaN.
    if ((m == 1 || n == 1) && beta == T(0)) std::fill(c, c + m * n, T(0));
    if ((m == 1 || n == 1) && alpha == T(1) && (beta == T(0) || beta == T(1)) && m * n * k <= own_gemv_max) {
        if (m == 1) {
            if (tb) gemv_rows_add(n, k, b, a, c);  // c[n] += B[n, :] . a
            else gemv_cols_add(k, n, b, a, c);     // c += a[k] B[k, :]
        } else {
            if (ta) gemv_cols_add(k, m, a, b, c);  // c[m] += sum_k A[k, m] b[k]
            else gemv_rows_add(m, k, a, b, c);
        }
        return;
    }
    if (m == 1) {
        // c[1,N] = a[K] op(B): op(B)^T a. B is stored [K,N], or [N,K] when transposed.
        if (tb) gemv(false, N, K, alpha, b, a, beta, c);
        else gemv(true, K, N, alpha, b, a, beta, c);
        return;
    }
    if (n == 1) {
        // c[M,1] = op(A) b[K]. A is stored [M,K], or [K,M] when transposed.
        if (ta) gemv(true, K, M, alpha, a, b, beta, c);
        else gemv(false, M, K, alpha, a, b, beta, c);
        return;
    }
    if (packed_rows_serve(ta, tb, m, n, k, alpha, beta)) {
        // B packed here, once per call (OpenBLAS packs it on every call too), then blocks of rows.
        thread_local std::vector<T> packed;
        if (packed.size() < k * n) packed.resize(k * n);
        pack_panels(false, k, n, b, packed.data());
        gemm_packed(m, n, k, a, packed.data(), beta, c);
        return;
    }
    if (executor && split_gemm(ta, tb, m, n, k, alpha, a, b, beta, c)) return;
    blas_gemm(ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

template <class T>
void gemm_packed(std::size_t m, std::size_t n, std::size_t k, const T* a, const T* bp, T beta, T* c, const T* s,
                 std::size_t lds) {
    if (m == 0 || n == 0) return;
    constexpr std::size_t panel = 128 / sizeof(T);
    const double flops = 2.0 * double(m) * double(n) * double(k);
    if (m > row_block) {
        // Blocks of rows, each through all the weight's panels: the weight is read from L2 once a
        // block, each panel serving the block's row tiles from L1. The blocks are split across
        // threads, each reading the whole weight.
        const std::size_t blocks = (m + row_block - 1) / row_block;
        auto run = [&](std::size_t lo, std::size_t hi) {
            for (std::size_t q = lo; q < hi; ++q) {
                const std::size_t r0 = q * row_block, r1 = std::min(m, r0 + row_block);
                small_gemm_packed(r1 - r0, n, k, a + r0 * k, k, bp, 0, n, beta, c + r0 * n, n, s ? s + r0 * lds : s,
                                  lds);
            }
        };
        if (executor_threads_blas() && flops >= split_min_flops)
            parallel_rows(blocks, 2.0 * double(row_block) * double(n) * double(k), run, 0.0);
        else run(0, blocks);
        return;
    }
    const std::size_t ways = std::min(split_ways(), n / panel);
    if (!executor_threads_blas() || ways < 2 || flops < (step_work::active ? step_split_min_flops : split_min_flops)) {
        small_gemm_packed(m, n, k, a, k, bp, 0, n, beta, c, n, s, lds);
        return;
    }
    // Blocks of whole panels of columns: each thread reads its share of the weight only.
    parallel_for(ways, [&](std::size_t p) {
        const auto bound = [&](std::size_t q) { return q == ways ? n : (n * q / ways + panel / 2) / panel * panel; };
        small_gemm_packed(m, n, k, a, k, bp, bound(p), bound(p + 1), beta, c, n, s, lds);
    });
}

template <class T>
void gemm_block(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    executor_threads_blas();  // OpenBLAS on one thread under the default policy
    if (m == 0 || n == 0) return;
    blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void transpose(const T* src, std::size_t rows, std::size_t cols, T* dst) {
    constexpr std::size_t tile = 16;
    for (std::size_t i0 = 0; i0 < rows; i0 += tile)
        for (std::size_t j0 = 0; j0 < cols; j0 += tile) {
            const std::size_t i1 = std::min(rows, i0 + tile), j1 = std::min(cols, j0 + tile);
            for (std::size_t j = j0; j < j1; ++j)
                for (std::size_t i = i0; i < i1; ++i) dst[j * rows + i] = src[i * cols + j];
        }
}
template void transpose<float>(const float*, std::size_t, std::size_t, float*);
template void transpose<double>(const double*, std::size_t, std::size_t, double*);

template void gemm_block<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                const float*, std::size_t, float, float*, std::size_t);
template void gemm_block<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                                 const double*, std::size_t, double, double*, std::size_t);
template void gemm_packed<float>(std::size_t, std::size_t, std::size_t, const float*, const float*, float, float*,
                                 const float*, std::size_t);
template void gemm_packed<double>(std::size_t, std::size_t, std::size_t, const double*, const double*, double, double*,
                                  const double*, std::size_t);
template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, const float*, float,
                          float*);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, const double*,
                           double, double*);

}  // namespace detail
}  // namespace seqgrad
