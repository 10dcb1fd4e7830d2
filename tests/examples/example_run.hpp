#pragma once
// Running an example binary as a user does, for the tests of tests/examples: its exit status and
// what it printed. The tests skip themselves where the examples are not built
// (SEQGRAD_BUILD_EXAMPLES=OFF).
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace seqgrad_example {

struct outcome {
    int status = -1;  // the exit status; -1 when it did not exit normally
    std::string out;  // stdout, and stderr too when asked for
};

inline std::filesystem::path binary(const std::string& name) {
    return std::filesystem::path(SEQGRAD_BINARY_DIR) / name;
}

/// Example `name` run with `args` (a shell word list), with its stderr in `out` or discarded; under
/// coreutils' timeout when `timeout_s` > 0 (status 124 if it ran longer: a hang fails, not hangs, a test).
inline outcome run(const std::string& name, const std::string& args, bool with_stderr = true, int timeout_s = 0) {
    outcome r;
    const std::string prefix = timeout_s > 0 ? "timeout " + std::to_string(timeout_s) + " " : "";
    FILE* p = popen((prefix + binary(name).string() + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(),
                    "r");
    if (!p) return r;
    std::array<char, 4096> buf{};
    for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
    const int s = pclose(p);
    r.status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    return r;
}

/// Whether example `name` was built; a test message saying it is skipped otherwise.
inline bool built(const std::string& name) {
    if (std::filesystem::exists(binary(name))) return true;
    BOOST_TEST_MESSAGE("skipped: " << binary(name) << " not built");
    return false;
}

}  // namespace seqgrad_example
