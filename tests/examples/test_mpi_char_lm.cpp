// bench/mpi_char_lm's command line, run alone (one rank, no mpirun): a bad value is a usage error
// (exit 2) naming the option, as in the other benches, not read by strtoull as 1 ("abc", "0"), a
// missing value ignored, or a size that stops the rank with MPI_Abort. Skipped when it is not built.
#include <boost/test/unit_test.hpp>

#include <string>

#include "example_run.hpp"

BOOST_AUTO_TEST_CASE(mpi_char_lm_refuses_bad_values_before_any_work) {
    if (!seqgrad_example::built("mpi_char_lm")) return;
    const std::pair<const char*, const char*> cases[] =
        {{"--steps abc", "mpi_char_lm: --steps: expected an integer >= 1, got 'abc' (see --help)"},
         {"--blocks 0", "mpi_char_lm: --blocks: expected an integer >= 1, got '0' (see --help)"},
         {"--hidden 4 --steps", "mpi_char_lm: --steps: missing value (see --help)"},
         {"--batch 200000", "mpi_char_lm: --batch: expected an integer < 200000, got '200000' (see --help)"},
         {"--vocab 4294967297", "mpi_char_lm: --vocab: expected an integer <= 2147483647, got '4294967297'"},
         {"--bucket-kb 18014398509481984", "mpi_char_lm: --bucket-kb: expected an integer <= "},
         {"--seed 1", "mpi_char_lm: unknown option '--seed' (see --help)"}};
    for (const auto& [args, message] : cases) {
        const auto r = seqgrad_example::run("mpi_char_lm", args, true, 60);
        BOOST_TEST(r.status == 2, args << ": " << r.out);
        BOOST_TEST(r.out.find(message) != std::string::npos, args << ": " << r.out);
        BOOST_TEST(r.out.find("bench mpi_char_lm.") == std::string::npos, args << ": " << r.out);  // no run
    }
}
