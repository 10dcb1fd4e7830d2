#include "blas.hpp"

#include <algorithm>
#include <mutex>

#include <cblas.h>

namespace seqgrad {

namespace {
// OpenBLAS's thread count is process-wide, and parallel regions overlap when several threads run
// backward at once: a save/restore per region would leave it at 1 (the second region saves the
// first one's 1) and change it under BLAS calls of other regions. So the regions share it: the
// first to enter sets it to 1, the last to leave restores the caller's count, and a
// set_blas_threads() meanwhile takes effect then. A count that is already 1 is never touched.
std::mutex blas_mu;
int regions = 0;
int outside = 0;  // the count to restore when the last region leaves
}  // namespace

void set_blas_threads(int n) {
    std::lock_guard<std::mutex> lock(blas_mu);
    if (regions > 0) outside = std::max(1, n);
    else openblas_set_num_threads(std::max(1, n));
}
int blas_threads() { return openblas_get_num_threads(); }

namespace detail {
void enter_parallel_region() {
    std::lock_guard<std::mutex> lock(blas_mu);
    if (regions++ > 0) return;
    outside = openblas_get_num_threads();
    if (outside != 1) openblas_set_num_threads(1);
}
void leave_parallel_region() noexcept {
    std::lock_guard<std::mutex> lock(blas_mu);
    if (--regions > 0) return;
    if (outside != 1) openblas_set_num_threads(outside);
}
}  // namespace detail
const char* blas_core_name() { return openblas_get_corename(); }

namespace detail {

namespace {
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
    // Arena memory is uninitialised; BLAS scaling by beta = 0 is not guaranteed to clear a NaN.
    if ((m == 1 || n == 1) && beta == T(0)) std::fill(c, c + m * n, T(0));
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
    const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    const int lda = ta ? M : K, ldb = tb ? K : N;
    if constexpr (std::is_same_v<T, float>) cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, lda, b, ldb, beta, c, N);
    else cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, lda, b, ldb, beta, c, N);
}

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, const float*, float,
                          float*);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, const double*,
                           double, double*);

}  // namespace detail
}  // namespace seqgrad
