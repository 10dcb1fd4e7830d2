// timeseries from the command line: a diverged training is an error (exit 1), not results of nan;
// an output folder that takes no files fails before training; sizes whose product wraps around are
// a bad command line, and running out of memory says so. Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "example_run.hpp"

namespace fs = std::filesystem;

namespace {
// A run of a second or less: 10 values per sequence, 4 sequences, hidden 4.
const std::string small = " --seq 10 --horizon 3 --steps 20 --test 4 --hidden 4 --batch 4 --eval-every 10";
}  // namespace

BOOST_AUTO_TEST_CASE(timeseries_stops_on_a_diverged_training) {
    if (!seqgrad_example::built("timeseries")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_timeseries_" + std::to_string(::getpid()));
    const auto r = seqgrad_example::run("timeseries", "--lr 1e30 --out " + dir.string() + small);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("timeseries: training diverged at step ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("nan mse") == std::string::npos, r.out);  // no result lines of nan
    BOOST_TEST(!fs::exists(dir / "timeseries_loss.svg"));
    const auto ok = seqgrad_example::run("timeseries", "--out " + dir.string() + small);
    BOOST_TEST(ok.status == 0, ok.out);
    BOOST_TEST(ok.out.find("result timeseries.mse ") != std::string::npos, ok.out);
    fs::remove_all(dir);
}

// A folder that takes no files, or an output file that is a folder, fails the run before training,
// not after it (with the first chart written).
BOOST_AUTO_TEST_CASE(timeseries_refuses_an_unwritable_output_before_training) {
    if (!seqgrad_example::built("timeseries")) return;
    if (fs::is_directory("/proc")) {
        const auto r = seqgrad_example::run("timeseries", "--out /proc" + small);
        BOOST_TEST(r.status == 1);
        BOOST_TEST(r.out.find("timeseries: cannot write in the output folder '/proc': ") != std::string::npos, r.out);
        BOOST_TEST(r.out.find("step ") == std::string::npos, r.out);  // no training
    }
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_timeseries_dir_" + std::to_string(::getpid()));
    fs::create_directories(dir / "timeseries_prediction.csv");
    const auto r = seqgrad_example::run("timeseries", "--out " + dir.string() + small);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("timeseries: cannot write '" + (dir / "timeseries_prediction.csv").string() +
                          "': it is a directory") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("step ") == std::string::npos, r.out);
    BOOST_TEST(!fs::exists(dir / "timeseries_prediction.svg"));
    fs::remove_all(dir);
}

// --batch (or --test) sequences of --seq values made a product that wrapped around to 0: the
// sequences were drawn into an empty vector (a segmentation fault).
BOOST_AUTO_TEST_CASE(timeseries_refuses_sizes_whose_product_wraps_around) {
    if (!seqgrad_example::built("timeseries")) return;
    const std::string wraps = "4611686018427387904";  // 2^62: times 4 values is 2^64
    const auto batch = seqgrad_example::run("timeseries", "--seq 4 --horizon 1 --steps 1 --test 2 --batch " + wraps);
    BOOST_TEST(batch.status == 2);
    BOOST_TEST(batch.out.find("timeseries: --batch: expected an integer <= 576460752303423487 with --seq 4, got '" +
                              wraps + "'") != std::string::npos,
               batch.out);
    const auto test = seqgrad_example::run("timeseries", "--seq 4 --horizon 1 --steps 1 --test " + wraps);
    BOOST_TEST(test.status == 2);
    BOOST_TEST(test.out.find("timeseries: --test: expected an integer <= ") != std::string::npos, test.out);
    // A noise whose samples overflow float printed a NaN test MSE before failing.
    const auto noise = seqgrad_example::run("timeseries", "--seq 4 --horizon 1 --steps 1 --test 2 --noise 1e300");
    BOOST_TEST(noise.status == 2);
    BOOST_TEST(noise.out.find("timeseries: --noise: expected at most 1e18") != std::string::npos, noise.out);
    BOOST_TEST(noise.out.find("nan") == std::string::npos, noise.out);
}

// A size no machine holds (w_hh's 4 x 10^28 entries: beyond size_t) is refused by the cell, naming
// the sizes, not met as a bare "std::bad_alloc" (sizes within size_t but beyond memory get the
// example's "out of memory" message; no test allocates them: on a large machine one could succeed).
BOOST_AUTO_TEST_CASE(timeseries_reports_running_out_of_memory) {
    if (!seqgrad_example::built("timeseries")) return;
    const auto r = seqgrad_example::run("timeseries",
                                        "--seq 10 --horizon 3 --steps 1 --test 2 --batch 2 --hidden "
                                        "100000000000000");
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("timeseries: nn::lstm_cell 'lstm': input size 1, hidden size 100000000000000 (expected") !=
                   std::string::npos,
               r.out);
}
