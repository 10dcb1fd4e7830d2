// Boost.Test entry point for tests/examples (one executable per folder).
#define BOOST_TEST_MODULE seqgrad_examples
#include <boost/test/unit_test.hpp>
