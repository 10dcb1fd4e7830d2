// Boost.Test entry point for tests/ops (one executable per folder).
#define BOOST_TEST_MODULE seqgrad_ops
#include <boost/test/unit_test.hpp>
