// The library's own kernel for products of a few rows by a row-major matrix (core/blas.hpp
// small_gemm). In a file of its own: it is built with 512-bit vectors where the CPU has them
// (CMakeLists.txt), which the batch-1 GEMV kernels of blas.cpp run slower with.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <string>
#include <utility>

#include "blas.hpp"
#include "errors.hpp"

namespace seqgrad::detail {

namespace {
// Products of a few rows by a weight stored row-major, C[M, N] (+)= A[M, K] B[K, N] (x W for
// the rows of a recurrent step at B = 2..64): OpenBLAS packs B on every call, which at these sizes
// costs as much as the product and is repeated by every thread a step's rows are split over. Here
// B is read in place: a tile of R rows of C by CW columns stays in registers over all of K, so each
// B row loaded serves R rows, and a column block of B (K x CW) stays in L1 across the row tiles.
// Each entry is one sum over k in order, whatever the split.
constexpr std::size_t own_gemm_max_m = 64;
std::atomic<bool> own_small_gemm{true};

// The vector width and register file of the target this file is built for (-march=native): 64-byte
// vectors and 32 registers on AVX-512, 32-byte and 16 on AVX2, 16-byte and 16 otherwise. A tile
// keeps 2 vectors of C columns for each of its rows in registers (2 R accumulators, plus B's two
// vectors and A's broadcast): at most 12 rows on AVX-512, 6 on the others. Vectors wider than the
// target's (64-byte ones on an AVX2 CPU) made GCC 12 spill every accumulator through the stack,
// and the kernel ran 40 times slower (a 2-core AMD EPYC).
#if defined(__AVX512F__)
constexpr std::size_t vec_bytes = 64, max_tile_rows = 12, tile_rows = 8;
#elif defined(__AVX__)
constexpr std::size_t vec_bytes = 32, max_tile_rows = 6, tile_rows = 6;
#else
constexpr std::size_t vec_bytes = 16, max_tile_rows = 6, tile_rows = 6;
#endif

// The accumulators are GCC/Clang vectors, so that they live in registers from the zeroing to the
// store: as a plain array zeroed with `= {}`, GCC 12 kept a stack copy, cleared it with memset and
// stored through it on every tile (3% of a cell's training at batch 32).
// V: vec_bytes of lanes; U: the same at any address (unaligned loads and stores). Spelled per type:
// GCC ignores attributes on a dependent type. GCC and Clang let a vector alias its element type;
// may_alias would be redundant, and with it GCC 12 ran this kernel at half speed.
template <class T>
struct vec;
template <>
struct vec<float> {
    typedef float V __attribute__((vector_size(vec_bytes)));
    typedef float U __attribute__((vector_size(vec_bytes), aligned(4)));
};
template <>
struct vec<double> {
    typedef double V __attribute__((vector_size(vec_bytes)));
    typedef double U __attribute__((vector_size(vec_bytes), aligned(8)));
};

// With Add, C = S + A B where S (s, lds) is C itself or another matrix (a step's input rows).
template <std::size_t R, std::size_t CW, bool Add, bool Pf, class T>
void gemm_tile(std::size_t k, const T* __restrict a, std::size_t lda, const T* __restrict b, std::size_t ldb, T* c,
               std::size_t ldc, const T* s, std::size_t lds) {
    using V = typename vec<T>::V;
    using U = typename vec<T>::U;
    constexpr std::size_t L = sizeof(V) / sizeof(T), NV = CW / L;
    V acc[R][NV];
    // The tile's rows of C (and S) are fetched now, to arrive while the loop over k runs: they are
    // a step's fresh record and input rows, out of cache, and the stores at the end waited for
    // them (28% of this kernel's time in the layer's forward). On the AMD EPYC the layer's forward
    // ran 35% faster at char_b32 (178k -> 240k tok/s) and 14% at word_b20 (58k -> 67k). Neither
    // alone does it: S's alone gained nothing at word_b20, C's alone half the gain at char_b32 and
    // nothing at word_b20.
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < CW * sizeof(T); v += 64) {
            if constexpr (Add) __builtin_prefetch(s + r * lds + v / sizeof(T), 0, 3);
            __builtin_prefetch(c + r * ldc + v / sizeof(T), 1, 3);
        }
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) acc[r][v] = V{};
    for (std::size_t q = 0; q < k; ++q) {
        const T* __restrict bq = b + q * ldb;
        if constexpr (Pf) {
#pragma GCC unroll 4
            for (std::size_t v = 0; v < CW * sizeof(T); v += 64)
                __builtin_prefetch(bq + 16 * ldb + v / sizeof(T), 0, 3);
        }
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r) {
            const T av = a[r * lda + q];
#pragma GCC unroll 4
            for (std::size_t v = 0; v < NV; ++v)
                acc[r][v] += av * static_cast<V>(*reinterpret_cast<const U*>(bq + v * L));
        }
    }
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < NV; ++v) {
            U* cv = reinterpret_cast<U*>(c + r * ldc + v * L);
            if constexpr (Add) *cv = *reinterpret_cast<const U*>(s + r * lds + v * L) + acc[r][v];
            else *cv = acc[r][v];
        }
}

// Whether B [k, n] streams from L2 into every tile (H = 256's 1 MB weight at a step): the tiles then
// prefetch it 16 rows ahead (word_b20's layer 1.7% faster at 1 and 2 threads, 8 or 4 rows ahead
// a little less); a smaller B stays in L1 between its row tiles, where prefetching gained nothing.
inline bool streams(std::size_t n, std::size_t k, std::size_t elem) { return n * k * elem > packed_rows_max_bytes; }

// A tile of R rows (1..max_tile_rows), chosen at run time.
template <std::size_t CW, bool Add, bool Pf, class T, std::size_t... R>
void tile_of(std::size_t r, std::size_t k, const T* a, std::size_t lda, const T* b, std::size_t ldb, T* c,
             std::size_t ldc, const T* s, std::size_t lds, std::index_sequence<R...>) {
    ((r == R + 1 ? gemm_tile<R + 1, CW, Add, Pf>(k, a, lda, b, ldb, c, ldc, s, lds) : void()), ...);
}

// Rows in tiles of at most max_tile_rows, as even as they go, about tile_rows each: on AVX-512
// 20 rows as 7 + 7 + 6 and 10 as one tile of 10, where tiles of 8, then 4 and 2 left small tiles
// whose few FMAs per load of B ran 33% slower a row (word_b20, 20 rows, H 256).
template <std::size_t CW, bool Add, class T>
void gemm_column_block(std::size_t m, std::size_t k, const T* a, std::size_t lda, const T* b, std::size_t ldb, T* c,
                       std::size_t ldc, const T* s, std::size_t lds, bool pf) {
    const std::size_t tiles = m <= max_tile_rows ? 1 : (m + tile_rows - 1) / tile_rows;
    for (std::size_t t = 0, i = 0; t < tiles; ++t) {
        const std::size_t r = (m - i) / (tiles - t);  // the remaining rows spread over the remaining tiles
        if (pf)
            tile_of<CW, Add, true>(r, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, s + i * lds, lds,
                                   std::make_index_sequence<max_tile_rows>{});
        else
            tile_of<CW, Add, false>(r, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, s + i * lds, lds,
                                    std::make_index_sequence<max_tile_rows>{});
        i += r;
    }
}

template <bool Add, class T>
void gemm_columns(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b, std::size_t ldb,
                  T* c, std::size_t ldc) {
    constexpr std::size_t CW = 2 * vec_bytes / sizeof(T), L = vec_bytes / sizeof(T);  // two vectors of lanes, one
    std::size_t j = 0;
    const bool pf = streams(n, k, sizeof(T));
    for (; j + CW <= n; j += CW) gemm_column_block<CW, Add>(m, k, a, lda, b + j, ldb, c + j, ldc, c + j, ldc, pf);
    for (; j < n; j += L) gemm_column_block<L, Add>(m, k, a, lda, b + j, ldb, c + j, ldc, c + j, ldc, pf);
}

// One panel of W columns (the layout's, fixed on every target), in column blocks of the tile's
// width: two vectors, or one where the panel is narrower.
template <std::size_t W, bool Add, class T>
void panel(std::size_t m, std::size_t k, const T* a, std::size_t lda, const T* bp, T* c, std::size_t ldc, const T* s,
           std::size_t lds, bool pf) {
    constexpr std::size_t CW = std::min(W, 2 * vec_bytes / sizeof(T));
    for (std::size_t j = 0; j < W; j += CW)
        gemm_column_block<CW, Add>(m, k, a, lda, bp + j, W, c + j, ldc, s + j, lds, pf);
}

// The packed layout (pack_panels): panel after panel of P columns (the last ones L wide when n is
// not a multiple of P), each k rows of its width, contiguous. A column block of the product then
// reads its panel from consecutive lines. Read in place from a row-major [k, n], a block strides
// through B by n entries per row: at n = 1,024 floats every row of the block falls in the same L1
// sets (4 KiB apart), so B streams from L2 with set conflicts, and at H = 256 the plain layout ran
// the recurrent product at 73 GFLOP/s against 94 packed (20 rows; 48 vs 93 at 10 rows).
template <bool Add, class T>
void packed_columns(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* bp,
                    std::size_t j0, std::size_t j1, T* c, std::size_t ldc, const T* s, std::size_t lds) {
    constexpr std::size_t P = 128 / sizeof(T), L = 64 / sizeof(T);  // the layout's panel widths
    const bool pf = streams(n, k, sizeof(T));
    for (std::size_t j = j0; j < j1;)
        if (j + P <= n) {
            panel<P, Add>(m, k, a, lda, bp + j * k, c + j, ldc, s + j, lds, pf);
            j += P;
        } else {
            panel<L, Add>(m, k, a, lda, bp + j * k, c + j, ldc, s + j, lds, pf);
            j += L;
        }
}

// A panel of W columns of a row-major b [k, n]: copies of a width known at compile time (a
// memcpy call per 128-byte row ran the packing of a 1 MB weight at a third of this speed).
template <std::size_t W, class T>
void plain_panel(std::size_t k, std::size_t n, const T* __restrict b, std::size_t j, T* __restrict p) {
    for (std::size_t q = 0; q < k; ++q)
#pragma GCC unroll 32
        for (std::size_t l = 0; l < W; ++l) p[q * W + l] = b[q * n + j + l];
}

// The panel of b^T for b [n, k]: its rows j .. j + W become the panel's columns, through a W x 16
// tile in L1 read along b's rows and written along the panel's (written an entry at a time with
// a stride of W, the transposition ran at half this speed).
template <std::size_t W, class T>
void transposed_panel(std::size_t k, const T* __restrict b, std::size_t j, T* __restrict p) {
    constexpr std::size_t QB = 16;
    std::size_t q0 = 0;
    for (; q0 + QB <= k; q0 += QB) {
        T tile[W][QB];
        for (std::size_t l = 0; l < W; ++l)
#pragma GCC unroll 16
            for (std::size_t q = 0; q < QB; ++q) tile[l][q] = b[(j + l) * k + q0 + q];
        for (std::size_t q = 0; q < QB; ++q)
#pragma GCC unroll 32
            for (std::size_t l = 0; l < W; ++l) p[(q0 + q) * W + l] = tile[l][q];
    }
    for (; q0 < k; ++q0)
        for (std::size_t l = 0; l < W; ++l) p[q0 * W + l] = b[(j + l) * k + q0];
}

}  // namespace

template <class T>
void pack_panels(bool trans, std::size_t k, std::size_t n, const T* b, T* dst) {
    constexpr std::size_t CW = 128 / sizeof(T), L = 64 / sizeof(T);
    if (n % L)
        throw value_error("pack_panels: " + std::to_string(n) + " columns (expected a multiple of " +
                          std::to_string(L) + ")");
    // Panels of CW columns, the last L wide when n is not a multiple of CW; split across the
    // executor's threads (a weight is packed once per tape, between the steps' regions).
    const std::size_t full = n / CW, panels = full + (n % CW) / L;
    parallel_rows(panels, double(CW * k), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
            const std::size_t j = i < full ? i * CW : full * CW + (i - full) * L;
            T* p = dst + j * k;
            if (i < full) trans ? transposed_panel<CW>(k, b, j, p) : plain_panel<CW>(k, n, b, j, p);
            else trans ? transposed_panel<L>(k, b, j, p) : plain_panel<L>(k, n, b, j, p);
        }
    });
}

template <class T>
void small_gemm_packed(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* bp,
                       std::size_t j0, std::size_t j1, T beta, T* c, std::size_t ldc, const T* s, std::size_t lds) {
    if (s) packed_columns<true>(m, n, k, a, lda, bp, j0, j1, c, ldc, s, lds);
    else if (beta == T(1)) packed_columns<true>(m, n, k, a, lda, bp, j0, j1, c, ldc, c, ldc);
    else packed_columns<false>(m, n, k, a, lda, bp, j0, j1, c, ldc, c, ldc);
}

template <class T>
bool small_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
                const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    constexpr std::size_t L = 64 / sizeof(T);
    if (ta || tb || alpha != T(1) || (beta != T(0) && beta != T(1)) || m < 2 || m > own_gemm_max_m || n % L ||
        !own_small_gemm.load(std::memory_order_relaxed))
        return false;
    if (beta == T(1)) gemm_columns<true>(m, n, k, a, lda, b, ldb, c, ldc);
    else gemm_columns<false>(m, n, k, a, lda, b, ldb, c, ldc);
    return true;
}

void set_small_gemm_kernels(bool on) { own_small_gemm.store(on); }
bool small_gemm_kernels() { return own_small_gemm.load(); }

template void pack_panels<float>(bool, std::size_t, std::size_t, const float*, float*);
template void pack_panels<double>(bool, std::size_t, std::size_t, const double*, double*);
template void small_gemm_packed<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*,
                                       std::size_t, std::size_t, float, float*, std::size_t, const float*, std::size_t);
template void small_gemm_packed<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                        const double*, std::size_t, std::size_t, double, double*, std::size_t,
                                        const double*, std::size_t);
template bool small_gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                const float*, std::size_t, float, float*, std::size_t);
template bool small_gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                                 const double*, std::size_t, double, double*, std::size_t);

}  // namespace seqgrad::detail
