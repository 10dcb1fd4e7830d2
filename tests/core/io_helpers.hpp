#pragma once
// Helpers of the checkpoint-file tests (test_io.cpp, test_io_corrupt.cpp): temporary folders, raw
// bytes, hand-built .npy members and zip records, and NumPy through /usr/bin/python3.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>

#include <unistd.h>

#include "core/io.hpp"

namespace sg = seqgrad;
namespace fs = std::filesystem;

namespace io_test {

// A fresh directory under the system temp directory, removed with everything in it.
struct temp_dir {
    fs::path path;
    temp_dir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() /
               ("seqgrad_test_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {})); }
};

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
inline void spit(const std::string& path, const std::string& bytes) {
    std::error_code ec;
    fs::remove(path, ec);  // a new file, not a truncated one: ext4 would flush a truncated one on close
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline std::uint64_t le(const std::string& s, std::size_t pos, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
    return v;
}

// Distinct, non-trivial values (negative, fractional, large and tiny magnitudes).
inline xt::xarray<double> pattern(const sg::shape& s, double seed) {
    xt::xarray<double> a = xt::xarray<double>::from_shape(s.to_vector());
    for (std::size_t i = 0; i < a.size(); ++i)
        a.data()[i] = (i % 2 ? -1.0 : 1.0) * (seed + static_cast<double>(i) / 3.0) * std::pow(10.0, double(i % 7) - 3);
    return a;
}

// The store used by most tests: dotted names, a scalar, a rank-3 tensor.
inline void build(sg::parameter_store& ps, bool with_values = true) {
    const std::vector<std::pair<std::string, sg::shape>> params = {
        {"encoder.w", sg::shape{3, 4}},
        {"encoder.lstm0.b", sg::shape{5}},
        {"scale", sg::shape{}},
        {"decoder.t", sg::shape{2, 3, 4}},
    };
    double seed = 1.0;
    for (auto& [name, s] : params) {
        if (with_values) ps.add(name, pattern(s, seed));
        else ps.add(name, s);
        seed += 1.5;
    }
}

inline std::vector<double> snapshot(const sg::parameter_store& ps) {
    std::vector<double> v;
    for (auto& p : ps.parameters()) {
        auto a = p.value_as_double();
        v.insert(v.end(), a.begin(), a.end());
    }
    return v;
}

// Runs f and checks that it throws io_error whose message contains every given piece.
inline void check_io_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
    try {
        f();
        BOOST_ERROR("no io_error thrown; expected one mentioning '" + pieces.front() + "'");
    } catch (const sg::io_error& e) {
        const std::string msg = e.what();
        for (auto& piece : pieces) BOOST_TEST(msg.find(piece) != std::string::npos, "'" << piece << "' in: " << msg);
    }
}

// A .npy member made by hand from a header dict and raw data bytes (format 1.0).
inline std::string npy(const std::string& dict, const std::string& data, const std::string& magic = "\x93NUMPY\x01") {
    std::string h = dict;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string s = magic + '\0';
    s += static_cast<char>(h.size() & 0xFF);
    s += static_cast<char>(h.size() >> 8);
    return s + h + data;
}

// Byte ranges [begin, end) of member data (the .npy files) in a stored zip written by seqgrad.
inline std::vector<std::pair<std::size_t, std::size_t>> member_spans(const std::string& zip) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    for (std::size_t pos = 0; pos + 30 <= zip.size() && le(zip, pos, 4) == 0x04034b50;) {
        const std::size_t start = pos + 30 + le(zip, pos + 26, 2) + le(zip, pos + 28, 2);
        spans.emplace_back(start, start + le(zip, pos + 18, 4));
        pos = spans.back().second;
    }
    return spans;
}

inline std::string fields(std::initializer_list<std::pair<std::uint64_t, int>> values) {
    std::string s;
    for (auto [v, bytes] : values)
        for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
}

// One member as a zip64 archive, as zipfile writes one over 4 GiB: sizes and the offset
// saturated and given in zip64 extra fields, a zip64 end record and its locator.
inline std::string zip64_archive(const std::string& name, const std::string& data) {
    const std::uint64_t crc = sg::detail::crc32(data.data(), data.size()), m = 0xFFFFFFFF, n = data.size();
    const std::string local = fields({{0x04034b50, 4},
                                      {45, 2},
                                      {0, 4},
                                      {0, 2},
                                      {0x21, 2},
                                      {crc, 4},
                                      {m, 4},
                                      {m, 4},
                                      {name.size(), 2},
                                      {20, 2}}) +
                              name + fields({{1, 2}, {16, 2}, {n, 8}, {n, 8}});
    const std::string central = fields({{0x02014b50, 4},
                                        {45, 2},
                                        {45, 2},
                                        {0, 4},
                                        {0, 2},
                                        {0x21, 2},
                                        {crc, 4},
                                        {m, 4},
                                        {m, 4},
                                        {name.size(), 2},
                                        {28, 2},
                                        {0, 6},
                                        {0, 4},
                                        {m, 4}}) +
                                name + fields({{1, 2}, {24, 2}, {n, 8}, {n, 8}, {0, 8}});
    const std::uint64_t cd = local.size() + n, end64 = cd + central.size();
    return local + data + central +
           fields({{0x06064b50, 4}, {44, 8}, {45, 2}, {45, 2}, {0, 8}, {1, 8}, {1, 8}, {central.size(), 8}, {cd, 8}}) +
           fields({{0x07064b50, 4}, {0, 4}, {end64, 8}, {1, 4}}) +
           fields({{0x06054b50, 4}, {0, 4}, {0xFFFF, 2}, {0xFFFF, 2}, {m, 4}, {m, 4}, {0, 2}});
}

inline bool have_numpy() {
    static const bool yes = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    return yes;
}
// Runs a Python script with the temp directory as argv[1]; true when it exits with 0.
inline bool python(const temp_dir& dir, const std::string& code) {
    spit(dir / "script.py", "import sys, numpy as np\nd = sys.argv[1]\n" + code);
    const std::string cmd = "/usr/bin/python3 '" + (dir / "script.py") + "' '" + dir.path.string() + "'";
    return std::system(cmd.c_str()) == 0;
}

}  // namespace io_test
using namespace io_test;
