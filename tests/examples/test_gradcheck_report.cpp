// gradcheck_report with op names: each must name a registered op, else exit 2 naming it (a typo
// among the names was skipped and the run passed). Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <string>

#include "example_run.hpp"

BOOST_AUTO_TEST_CASE(gradcheck_report_refuses_a_name_of_no_op) {
    if (!seqgrad_example::built("gradcheck_report")) return;
    const auto one = seqgrad_example::run("gradcheck_report", "tanh");
    BOOST_TEST(one.status == 0);
    BOOST_TEST(one.out.find("result ops_checked 1 ops") != std::string::npos, one.out);
    const auto typo = seqgrad_example::run("gradcheck_report", "tanh tahn");
    BOOST_TEST(typo.status == 2);
    BOOST_TEST(typo.out.find("no registered op 'tahn'") != std::string::npos, typo.out);
}
