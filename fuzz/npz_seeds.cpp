// Writes a small seed corpus for fuzz_npz into the directory given: checkpoints from save_npz and
// write_npz (f32, f64, several ranks, integer and string metadata members, an empty archive).
// Generated at test time so that no binary files are committed.
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/io.hpp"

namespace sg = seqgrad;

namespace {
std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string s = std::string("\x93NUMPY\x01\x00", 8);
    s += static_cast<char>(h.size() & 0xFF);
    s += static_cast<char>(h.size() >> 8);
    return s + h + data;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    sg::parameter_store ps;
    ps.add("w", xt::xarray<double>{{1, 2, 3}, {4, 5, 6}});
    ps.add("b", xt::xarray<double>{0.5, -0.5, 0});
    sg::save_npz(ps, (dir / "store_f32.npz").string());
    ps.to(sg::dtype::f64);
    sg::save_npz(ps, (dir / "store_f64.npz").string());
    sg::write_npz((dir / "ranks.npz").string(), {{"s", xt::xarray<double>(2.5)},
                                                 {"m", xt::zeros<double>({2, 2, 1, 2})},
                                                 {"e", xt::zeros<double>({0})}});
    sg::write_npz((dir / "empty.npz").string(), {});
    sg::detail::write_zip((dir / "meta.npz").string(),
                          {{"w.npy", npy("<f4", "(2, 3)", std::string(24, '\0'))},
                           {"step.npy", npy("<i8", "()", std::string("\x2a\0\0\0\0\0\0\0", 8))},
                           {"flags.npy", npy("|b1", "(2,)", std::string("\x01\x00", 2))},
                           {"name.npy", npy("<U4", "()", std::string(16, 'a'))}});
    return 0;
}
