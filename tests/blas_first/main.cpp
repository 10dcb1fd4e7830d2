// Boost.Test entry point for tests/blas_first: its own process, since what it checks happens once,
// at the first use of OpenBLAS in a process.
#define BOOST_TEST_MODULE seqgrad_blas_first
#include <boost/test/unit_test.hpp>
