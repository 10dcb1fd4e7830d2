// gradient_flow from the command line: sizes whose product wraps around are a bad command line
// (exit 2), not a segmentation fault; a --gain whose weights a float cannot hold is an error (exit 1),
// not results of nan; a worker running out of memory says so. Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "example_run.hpp"

// --test sequences of --T steps of 2 values: 2^24 * 2^40 * 2 = 2^65 wrapped around to 0, and the
// test set was drawn into an empty vector.
BOOST_AUTO_TEST_CASE(gradient_flow_refuses_sizes_whose_product_wraps_around) {
    if (!seqgrad_example::built("gradient_flow")) return;
    const auto test = seqgrad_example::run("gradient_flow", "--T 1099511627776 --test 16777216 --steps 1 --jobs 1");
    BOOST_TEST(test.status == 2);
    BOOST_TEST(test.out.find("gradient_flow: --test: expected an integer <= 1048575 with --T 1099511627776, got "
                             "'16777216'") != std::string::npos,
               test.out);
    const auto batch = seqgrad_example::run("gradient_flow", "--quick --batch 576460752303423488");
    BOOST_TEST(batch.status == 2);
    BOOST_TEST(batch.out.find("gradient_flow: --batch: expected an integer <= ") != std::string::npos, batch.out);
    const auto T = seqgrad_example::run("gradient_flow", "--T 9223372036854775808");  // 2 T wraps around to 0
    BOOST_TEST(T.status == 2);
    BOOST_TEST(T.out.find("gradient_flow: --T: expected an integer <= ") != std::string::npos, T.out);
}

// --gain 1e40: W_hh ~ N(0, 1e40^2 / H) in float was inf, and every figure of the exploding RNN nan.
BOOST_AUTO_TEST_CASE(gradient_flow_refuses_weights_beyond_float) {
    if (!seqgrad_example::built("gradient_flow")) return;
    const auto r = seqgrad_example::run("gradient_flow", "--quick --models exploding --steps 1 --jobs 1 --gain 1e40");
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("gradient_flow: parameter 'rnn.w_hh': assign of ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("nan") == std::string::npos, r.out);
}

// A training that runs out of memory on a worker thread (--batch 2^50 sequences: 2^53 floats a batch;
// the test set and the flow batch on the main thread stay small) is reported as out of memory, as on
// the main thread, not as "tanh failed: std::bad_alloc".
BOOST_AUTO_TEST_CASE(gradient_flow_reports_a_worker_running_out_of_memory) {
    if (!seqgrad_example::built("gradient_flow")) return;
    const auto dir = std::filesystem::temp_directory_path() / ("seqgrad_flow_oom_" + std::to_string(::getpid()));
    const auto r = seqgrad_example::run("gradient_flow",
                                        "--T 2 --batch 1125899906842624 --test 2 --steps 1 --jobs 1 "
                                        "--models tanh --runs plain --hidden 2 --out " +
                                            dir.string());
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("gradient_flow: out of memory (std::bad_alloc): the sizes on the command line need more "
                          "memory than there is") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("failed: std::bad_alloc") == std::string::npos, r.out);
    std::filesystem::remove_all(dir);
}
