// classify_names on data too small to train on: an error (exit 1), not a run that reports a NaN
// loss or a one-class classifier. Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "example_run.hpp"

namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(classify_names_needs_two_languages_and_names_to_train_on) {
    if (!seqgrad_example::built("classify_names")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_" + std::to_string(::getpid()));
    fs::create_directories(dir / "one");
    fs::create_directories(dir / "two");
    std::ofstream(dir / "one" / "English.txt") << "Smith\nJones\nBrown\n";
    std::ofstream(dir / "one" / "Czech.txt") << "\n  \n";  // no names: no language
    std::ofstream(dir / "two" / "English.txt") << "Smith\n";
    std::ofstream(dir / "two" / "Czech.txt") << "Novak\n";  // one name each: all held out
    const std::string small = " --epochs 1 --hidden 4 --embed 4 --out " + (dir / "out").string();
    const auto one = seqgrad_example::run("classify_names", "--data " + (dir / "one").string() + small);
    BOOST_TEST(one.status == 1);
    BOOST_TEST(one.out.find("at least two") != std::string::npos, one.out);
    const auto two = seqgrad_example::run("classify_names", "--data " + (dir / "two").string() + small);
    BOOST_TEST(two.status == 1);
    BOOST_TEST(two.out.find("no names left to train on") != std::string::npos, two.out);
    BOOST_TEST(two.out.find("nan") == std::string::npos, two.out);
    fs::remove_all(dir);
}

// A diverged training is an error (exit 1), not a loss of nan and results of a classifier of nan.
BOOST_AUTO_TEST_CASE(classify_names_stops_on_a_diverged_training) {
    if (!seqgrad_example::built("classify_names")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_nan_" + std::to_string(::getpid()));
    fs::create_directories(dir / "data");
    std::ofstream(dir / "data" / "English.txt") << "Smith\nJones\nBrown\nGreen\nWhite\n";
    std::ofstream(dir / "data" / "Czech.txt") << "Novak\nSvoboda\nDvorak\nCerny\nHorak\n";
    const std::string small = " --epochs 2 --batch 2 --hidden 4 --embed 4 --data " + (dir / "data").string() +
                              " --out " + (dir / "out").string();
    const auto r = seqgrad_example::run("classify_names", "--lr 1e38" + small);  // the largest a float lr holds
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("classify_names: training diverged in epoch 1, batch ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("result ") == std::string::npos, r.out);  // no results of a classifier of nan
    BOOST_TEST(!fs::exists(dir / "out" / "names_confusion.csv"));
    const auto ok = seqgrad_example::run("classify_names", small.substr(1));
    BOOST_TEST(ok.status == 0, ok.out);
    BOOST_TEST(ok.out.find("result names.accuracy ") != std::string::npos, ok.out);
    fs::remove_all(dir);
}

// --batch 2^59: the pool of 32 batches, 32 * 2^59 names, wrapped around to 0 and make_batches
// looped for ever. A batch larger than the data is one batch of all the names.
BOOST_AUTO_TEST_CASE(classify_names_takes_a_batch_larger_than_the_data) {
    if (!seqgrad_example::built("classify_names")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_batch_" + std::to_string(::getpid()));
    fs::create_directories(dir / "data");
    std::ofstream(dir / "data" / "English.txt") << "Smith\nJones\nBrown\nGreen\nWhite\n";
    std::ofstream(dir / "data" / "Czech.txt") << "Novak\nSvoboda\nDvorak\nCerny\nHorak\n";
    const std::string args = "--epochs 1 --hidden 4 --embed 4 --data " + (dir / "data").string() + " --out " +
                             (dir / "out").string() + " --batch ";
    for (const std::string batch : {"576460752303423488", "18446744073709551615"}) {
        const auto r = seqgrad_example::run("classify_names", args + batch, true, 20);
        BOOST_TEST(r.status == 0, "--batch " << batch << ": status " << r.status << " (124: timed out)\n" << r.out);
        BOOST_TEST(r.out.find("result names.accuracy ") != std::string::npos, r.out);
    }
    fs::remove_all(dir);
}

// --predict "Smith, Smith": the second name was read with its space, a character the model never
// saw before the name, and printed and scored as " Smith". Names are trimmed as the data's are.
BOOST_AUTO_TEST_CASE(classify_names_trims_the_names_to_predict) {
    if (!seqgrad_example::built("classify_names")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_predict_" + std::to_string(::getpid()));
    fs::create_directories(dir / "data");
    std::ofstream(dir / "data" / "English.txt") << "Smith\nJones\nBrown\nGreen\nWhite\n";
    std::ofstream(dir / "data" / "Czech.txt") << "Novak\nSvoboda\nDvorak\nCerny\nHorak\n";
    const auto r = seqgrad_example::run("classify_names", "--epochs 2 --hidden 4 --embed 4 --data " +
                                                              (dir / "data").string() + " --out " +
                                                              (dir / "out").string() + " --predict 'Smith, Smith ,  '");
    BOOST_TEST(r.status == 0, r.out);
    const auto first = r.out.find("\nSmith "), second = r.out.find("\nSmith ", first + 1);
    BOOST_TEST_REQUIRE(second != std::string::npos, r.out);
    const auto line = [&](std::size_t at) { return r.out.substr(at, r.out.find('\n', at + 1) - at); };
    BOOST_TEST(line(first) == line(second));  // the same name, the same probabilities
    BOOST_TEST(r.out.find("\n Smith") == std::string::npos, r.out);
    fs::remove_all(dir);
}

// --data naming a file (one language's list rather than their folder) says so, not "no names data found".
BOOST_AUTO_TEST_CASE(classify_names_data_that_is_a_file_is_named_as_not_a_folder) {
    if (!seqgrad_example::built("classify_names")) return;
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_file_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "English.txt") << "Smith\nJones\n";
    const auto r = seqgrad_example::run("classify_names", "--data " + (dir / "English.txt").string() +
                                                              " --epochs 1 --out " + (dir / "out").string());
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.out.find("--data '" + (dir / "English.txt").string() + "' is not a folder") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("no names data found") == std::string::npos, r.out);
    fs::remove_all(dir);
}
