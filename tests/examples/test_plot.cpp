// examples/plot.hpp: its files go through the library's atomic writer (a symbolic link written
// through); a line chart of y values one double apart at 1e20 is drawn (its tick loop added a step
// below the spacing of doubles there, never advanced, and grew a vector until memory ran out). The
// chart is drawn in a child process with its memory and time bounded, so that the old loop fails
// the test instead of taking the machine's memory.
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../examples/plot.hpp"

namespace fs = std::filesystem;
namespace plot = seqgrad::plot;

namespace {

// Exit status of f() run in a child with 512 MiB more address space than now and 20 s of time:
// 0 when f returns, 3 when it throws (std::bad_alloc), -1 when a signal ended it.
template <class F>
int in_child(F f) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::signal(SIGALRM, SIG_DFL);
        std::signal(SIGABRT, SIG_DFL);
        long pages = 0;
        std::ifstream("/proc/self/statm") >> pages;
        const rlim_t now = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE));
        const rlimit lim{now + (rlim_t{512} << 20), now + (rlim_t{512} << 20)};
        ::setrlimit(RLIMIT_AS, &lim);
        ::alarm(20);
        try {
            f();
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Ticks equal to 1e-12 (the printed labels are rounded far coarser).
bool near(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::abs(a[i] - b[i]) > 1e-12) return false;
    return true;
}

std::string read(const fs::path& p) {
    std::ostringstream s;
    s << std::ifstream(p).rdbuf();
    return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(line_chart_of_values_a_double_apart_is_drawn) {
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_plot_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const double a = 1e20, b = std::nextafter(a, 2e20);  // 16384 apart
    const fs::path linear = dir / "linear.svg", ticks = dir / "ticks.txt";
    BOOST_TEST(in_child([&] { plot::line_chart_svg(linear.string(), {{"y", {0, 1}, {a, b}}}, "t", "x", "y"); }) == 0);
    BOOST_TEST(read(linear).find("</svg>") != std::string::npos);
    // The ticks themselves: 1 to target + 2 of them, increasing, within a step of [lo, hi].
    BOOST_TEST(in_child([&] {
                   double step = 0;
                   const auto t = plot::detail::nice_ticks(a, b, 6, &step);
                   bool ok = !t.empty() && t.size() <= 8 && t.front() >= a - step && t.back() <= b + step;
                   for (std::size_t k = 1; k < t.size(); ++k) ok = ok && t[k] > t[k - 1];
                   std::ofstream(ticks) << (ok ? "ok" : "bad") << "\n";
               }) == 0);
    BOOST_TEST(read(ticks) == "ok\n");
    // Ordinary ranges keep their ticks.
    double step = 0;
    BOOST_TEST(near(plot::detail::nice_ticks(0.0, 1.0, 6, &step), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0})));
    BOOST_TEST(step == 0.2);
    BOOST_TEST(near(plot::detail::nice_ticks(-3.0, 7.0, 4, &step), (std::vector<double>{0, 5})));
    BOOST_TEST(step == 5.0);
    BOOST_TEST(near(plot::detail::nice_ticks(-0.3, 0.7, 8, &step), (std::vector<double>{-0.2, 0, 0.2, 0.4, 0.6})));
    BOOST_TEST(step == 0.2);
    fs::remove_all(dir);
}

// plot's files go through the library's atomic writer: a link is written through (the file it names
// gets the new text, the link stays a link), and a folder that does not exist is an io_error naming
// plot and the path, with nothing left behind.
BOOST_AUTO_TEST_CASE(csv_through_a_symbolic_link_updates_the_file_it_names) {
    const fs::path dir = fs::temp_directory_path() / ("seqgrad_plot_link_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "real.csv") << "old\n";
    fs::create_symlink("real.csv", dir / "link.csv");
    plot::write_csv((dir / "link.csv").string(), {"a", "b"}, {{1.0, 2.5}});
    BOOST_TEST(fs::is_symlink(dir / "link.csv"));
    std::stringstream text;
    text << std::ifstream(dir / "real.csv").rdbuf();
    BOOST_TEST(text.str() == "a,b\n1,2.5\n");
    const std::string missing = (dir / "no" / "x.csv").string();
    std::string what;
    try {
        plot::write_csv(missing, {"a"}, {{1.0}});
    } catch (const seqgrad::io_error& e) {
        what = e.what();
    }
    BOOST_TEST(what.starts_with("plot: '" + missing + "': "), what);
    BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);
    fs::remove_all(dir);
}
