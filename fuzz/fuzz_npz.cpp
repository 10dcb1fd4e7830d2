// libFuzzer target for the checkpoint reader (read_npz, load_npz): any byte string must give
// either a result or io_error, never a crash, a sanitizer report or a partly loaded store.
// Build with clang: cmake -DSEQGRAD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ (see README).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "core/errors.hpp"
#include "core/io.hpp"

namespace sg = seqgrad;

namespace {
// Members the seeds (fuzz/npz_seeds.cpp) name, so mutations reach the loading paths too.
sg::parameter_store& store() {
    static sg::parameter_store* ps = [] {
        auto* s = new sg::parameter_store();
        s->add("w", sg::shape{2, 3});
        s->add("b", sg::shape{3});
        return s;
    }();
    return *ps;
}
const std::string& path() {
    static const std::string p = "/tmp/seqgrad_fuzz_npz_" + std::to_string(::getpid()) + ".npz";
    return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path().c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        (void)sg::read_npz(path(), true);
    } catch (const sg::io_error&) {}
    try {
        (void)sg::read_npz(path());
    } catch (const sg::io_error&) {}
    for (bool strict : {true, false}) {
        auto& ps = store();
        const auto w = ps.get("w").value<float>(), b = ps.get("b").value<float>();
        try {
            sg::load_npz(ps, path(), {.strict = strict});
        } catch (const sg::io_error&) {
            // A failed load must leave the store exactly as it was.
            if (!(ps.get("w").value<float>() == w) || !(ps.get("b").value<float>() == b)) std::abort();
        }
    }
    return 0;
}
