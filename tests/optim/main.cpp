// Boost.Test entry point for tests/optim (one executable per folder).
#define BOOST_TEST_MODULE seqgrad_optim
#include <boost/test/unit_test.hpp>
