// Under the default policy (set_blas_threads(0)) OpenBLAS runs on one thread and the executor
// splits products. The policy is set at the first BLAS use; where that use came inside a parallel
// region (a data_parallel part's product), it did nothing, and the region's end restored
// OpenBLAS's own start-up count: 2 threads for every product after, beside the executor's.
#include <boost/test/unit_test.hpp>

#include <cblas.h>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

BOOST_AUTO_TEST_CASE(a_first_blas_use_inside_a_region_still_holds_openblas_at_one_thread) {
    // As OpenBLAS starts on a 2-core machine without OPENBLAS_NUM_THREADS (ctest sets it to 1).
    openblas_set_num_threads(2);
    sg::set_num_threads(2);
    sg::parameter_store ps(sg::dtype::f32);
    auto w = ps.add("w", xt::xarray<double>(xt::ones<double>({256, 256})));
    sg::data_parallel(2, [&](sg::tape& t, std::size_t) {
        return sg::sum(sg::matmul(t.input(xt::xarray<double>(xt::ones<double>({256, 256}))), t.param(w)));
    });
    BOOST_TEST(sg::blas_threads() == 1);
    BOOST_TEST(openblas_get_num_threads() == 1);
    // The gradient is right as well: every entry of w sees the 256 ones of its input column per part.
    BOOST_TEST(w.grad_as_double()(0, 0) == 2 * 256.0);
}
