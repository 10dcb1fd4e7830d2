// classify_names on data too small to train on: an error (exit 1), not a run that reports a NaN
// loss or a one-class classifier. Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

const fs::path binary = fs::path(SEQGRAD_BINARY_DIR) / "classify_names";

int run(const std::string& args, std::string* out = nullptr) {
    FILE* p = popen((binary.string() + " " + args + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    std::string text;
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) text.append(buf.data(), n);
    if (out) *out = text;
    const int s = pclose(p);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(classify_names_needs_two_languages_and_names_to_train_on) {
    if (!fs::exists(binary)) {
        BOOST_TEST_MESSAGE("skipped: " << binary << " not built");
        return;
    }
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_names_" + std::to_string(::getpid()));
    fs::create_directories(dir / "one");
    fs::create_directories(dir / "two");
    std::ofstream(dir / "one" / "English.txt") << "Smith\nJones\nBrown\n";
    std::ofstream(dir / "one" / "Czech.txt") << "\n  \n";  // no names: no language
    std::ofstream(dir / "two" / "English.txt") << "Smith\n";
    std::ofstream(dir / "two" / "Czech.txt") << "Novak\n";  // one name each: all held out
    const std::string small = " --epochs 1 --hidden 4 --embed 4 --out " + (dir / "out").string();
    std::string out;
    BOOST_TEST(run("--data " + (dir / "one").string() + small, &out) == 1);
    BOOST_TEST(out.find("at least two") != std::string::npos, out);
    BOOST_TEST(run("--data " + (dir / "two").string() + small, &out) == 1);
    BOOST_TEST(out.find("no names left to train on") != std::string::npos, out);
    BOOST_TEST(out.find("nan") == std::string::npos, out);
    fs::remove_all(dir);
}
