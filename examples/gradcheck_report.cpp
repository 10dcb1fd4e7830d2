// Gradient-checks every registered op on its sample inputs (central differences in double) and
// prints one row per op. Exits non-zero if any op fails.
//
//   ./gradcheck_report            # all ops
//   ./gradcheck_report matmul tanh  # only these (a name of no registered op: exit 2)
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;

int main(int argc, char** argv) {
    std::vector<std::string> only(argv + 1, argv + argc);
    const auto ops = sg::op_registry::instance().all();
    for (const std::string& name : only) {  // a misspelt name would otherwise be skipped silently
        if (std::none_of(ops.begin(), ops.end(), [&](const sg::op_def* op) { return op->name == name; })) {
            std::fprintf(stderr, "gradcheck_report: no registered op '%s' (usage: gradcheck_report [op ...])\n",
                         name.c_str());
            return 2;
        }
    }
    std::printf("%-16s %8s %14s %14s  %s\n", "op", "samples", "max abs err", "max rel err", "result");
    std::size_t failed = 0, total = 0;
    for (const sg::op_def* op : sg::op_registry::instance().all()) {
        if (!only.empty() && std::find(only.begin(), only.end(), op->name) == only.end()) continue;
        const sg::op_check c = sg::gradcheck_op(*op);
        ++total;
        failed += !c.passed;
        std::printf("%-16s %8zu %14.3e %14.3e  %s%s\n", op->name.c_str(), c.samples, c.max_abs_err, c.max_rel_err,
                    c.passed ? "pass" : "FAIL", c.how == "gradcheck" ? "" : ("  (" + c.how + ")").c_str());
        for (const auto& r : c.reports)
            if (!r.passed && r.checked) std::printf("%s", (std::ostringstream() << r).str().c_str());
    }
    std::printf("result ops_checked %zu ops\nresult ops_failed %zu ops\n", total, failed);
    return failed == 0 && total > 0 ? 0 : 1;
}
