// Boost.Test entry point for tests/core (one executable per folder).
#define BOOST_TEST_MODULE seqgrad_core
#include <boost/test/unit_test.hpp>
