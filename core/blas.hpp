#pragma once
// Matrix products for the kernels: row-major GEMM through OpenBLAS, with GEMV when one side is a
// single row or column (an N=1 SGEMM runs several times slower than SGEMV).
#include <cstddef>

namespace seqgrad {

/// Threads OpenBLAS may use inside one product (a process-wide setting). seqgrad's policy: BLAS
/// gets one thread while any of the executor's parallel regions runs (the first region to start
/// sets it, the last to end restores it, however many threads run backward at once), and the
/// caller's choice otherwise; set_blas_threads() during a region takes effect when the last one
/// ends. With a count of 1 the executor never changes it: call set_blas_threads(1) once when your
/// own threads call BLAS (or run backward) concurrently with seqgrad's.
void set_blas_threads(int n);
/// The count OpenBLAS uses now (1 inside parallel regions).
int blas_threads();
/// The OpenBLAS kernel family in use ("Haswell", "SkylakeX", ...), for benchmark reports.
const char* blas_core_name();

namespace detail {
/// Bracket a parallel region (reference counted across threads; see set_blas_threads).
void enter_parallel_region();
void leave_parallel_region() noexcept;
/// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major and contiguous; op(A) is M x K.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, const T* b,
          T beta, T* c);
}  // namespace detail

}  // namespace seqgrad
