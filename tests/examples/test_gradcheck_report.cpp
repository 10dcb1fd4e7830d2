// gradcheck_report with op names: each must name a registered op, else exit 2 naming it (a typo
// among the names was skipped and the run passed). Skipped when the examples are not built.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace {

const fs::path binary = fs::path(SEQGRAD_BINARY_DIR) / "gradcheck_report";

int run(const std::string& args, std::string& out) {
    FILE* p = popen((binary.string() + " " + args + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    out.clear();
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
    const int s = pclose(p);
    return WIFEXITED(s) ? WEXITSTATUS(s) : -1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(gradcheck_report_refuses_a_name_of_no_op) {
    if (!fs::exists(binary)) {
        BOOST_TEST_MESSAGE("skipped: " << binary << " not built");
        return;
    }
    std::string out;
    BOOST_TEST(run("tanh", out) == 0);
    BOOST_TEST(out.find("result ops_checked 1 ops") != std::string::npos, out);
    BOOST_TEST(run("tanh tahn", out) == 2);
    BOOST_TEST(out.find("no registered op 'tahn'") != std::string::npos, out);
}
