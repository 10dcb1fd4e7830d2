// Boost.Test entry point for tests/nn (one executable per folder).
#define BOOST_TEST_MODULE seqgrad_nn
#include <boost/test/unit_test.hpp>
