#pragma once
// Matrix products for the kernels: row-major GEMM through OpenBLAS, with GEMV when one side is a
// single row or column (an N=1 SGEMM runs several times slower than SGEMV).
#include <cstddef>

#include "executor.hpp"  // set_blas_threads: the executor owns BLAS's thread count

namespace seqgrad {

/// The OpenBLAS kernel family in use ("Haswell", "SkylakeX", ...), for benchmark reports.
const char* blas_core_name();

namespace detail {
/// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major and contiguous; op(A) is M x K.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, const T* b,
          T beta, T* c);
/// gemm splits products of at least this many flops (about 50 us on one core) across the
/// executor's threads. Smaller ones gain little (waking a thread, packing the shared operand twice)
/// and can lose much when another process holds the second core; a model whose products are all
/// small (a char LM at batch 1) then runs exactly as on one thread. From 4e6 that LM (its products
/// 8.4 or 1 MFLOP) ran 1.08x on 2 threads in one hour of a 2-vCPU EPYC and 0.79-0.92x the next.
constexpr double split_min_flops = 1e7;
/// Below split_min_flops, lstm_step's dW_hh over a run of steps from this size goes to another
/// thread while backward goes on (detail::overlap; ops/recurrent_chain.cpp). Smaller products
/// cost more to hand over than they take.
constexpr double hand_over_min_flops = 4e6;
/// The same on blocks of larger row-major matrices (leading dimensions lda, ldb, ldc), for
/// kernels that split a product themselves: one BLAS call on the calling thread.
template <class T>
void gemm_block(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);
/// C = A B (+ C with beta = 1) on the library's own kernel (core/small_gemm.cpp) when it serves
/// this product (2..64 rows, neither transposed, alpha 1, beta 0 or 1, N a multiple of the vector
/// width, kernels on); false, touching nothing, otherwise.
template <class T>
bool small_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);
/// A weight packed for the own kernel's products (C = A op(B) at a recurrent step's few rows): op(B)
/// [k, n] laid out as column panels (k * n entries; n a multiple of the vector width, 64 bytes of
/// lanes), packed once per tape or sequence and read by every step; value_error otherwise. B is
/// stored [k, n], or [n, k] with trans.
template <class T>
void pack_panels(bool trans, std::size_t k, std::size_t n, const T* b, T* dst);
/// C[m, n] = A[m, k] op(B) (+ C with beta = 1; beta 0 or 1) from B packed by pack_panels; the
/// columns [j0, j1) only (bounds at multiples of 128 bytes of lanes), one thread, any m. The same
/// values as gemm on the unpacked B: each entry is one sum over k in order. With s (row stride
/// lds): C = S + A op(B), beta ignored (a step's input rows added in the product's store, not
/// copied into C first).
template <class T>
void small_gemm_packed(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* bp,
                       std::size_t j0, std::size_t j1, T beta, T* c, std::size_t ldc, const T* s = nullptr,
                       std::size_t lds = 0);
/// The largest weight (bytes) whose products of many rows go to the own kernel (gemm_packed, from
/// the tape's transposed_product or from gemm): one that stays in L2 while blocks of rows stream
/// past it (H = 128's gate weights; H = 256's 1 MB ran a layer 1.5% slower than OpenBLAS).
constexpr std::size_t packed_rows_max_bytes = std::size_t(512) << 10;
/// The same over all columns, split in blocks of panels across the executor's threads when large
/// enough (as gemm splits its products); more than 64 rows go in blocks of 64, each through all
/// the panels, the blocks split across threads. With s: C = S + A op(B) as above (lds 0: one row
/// of S added to every row, a bias).
template <class T>
void gemm_packed(std::size_t m, std::size_t n, std::size_t k, const T* a, const T* bp, T beta, T* c,
                 const T* s = nullptr, std::size_t lds = 0);
/// dst [cols, rows] = src [rows, cols] transposed, in cache blocks (a plain loop strides through
/// dst one row per entry: several times slower at a weight's size).
template <class T>
void transpose(const T* src, std::size_t rows, std::size_t cols, T* dst);
/// Products of 2..64 rows by a row-major matrix (x W at a recurrent step's batch) run on the
/// library's own kernel, which reads W in place, instead of OpenBLAS, which packs it on every call;
/// so do products of many rows by a weight of at most packed_rows_max_bytes (a layer's input
/// projection and input gradient at H = 128), the weight packed once (on by default; off for
/// comparisons and debugging: everything then goes to OpenBLAS).
void set_small_gemm_kernels(bool on);
bool small_gemm_kernels();
}  // namespace detail

}  // namespace seqgrad
