#pragma once
// Internal to the .npz reader and writer (core/io.cpp, core/npz_read.cpp): zip constants,
// little-endian fields, and error messages that name the file and member.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "errors.hpp"

namespace seqgrad::detail::npz {

constexpr std::uint32_t sig_local = 0x04034b50, sig_central = 0x02014b50, sig_end = 0x06054b50;
constexpr std::uint32_t sig_end64 = 0x06064b50, sig_locator64 = 0x07064b50;
constexpr std::uint64_t max32 = 0xFFFFFFFFu;
constexpr std::uint16_t dos_date = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: files are reproducible

// ---- little-endian bytes ----------------------------------------------------------------------

inline void put_le(std::string& s, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFFu);
}
inline std::string le_fields(std::initializer_list<std::pair<std::uint64_t, int>> fields) {
    std::string s;
    for (auto [v, bytes] : fields) put_le(s, v, bytes);
    return s;
}
inline std::uint64_t get_le(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// ---- errors -----------------------------------------------------------------------------------

// A member name from a possibly corrupt file, safe to print.
inline std::string printable(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 120; ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F) {
            out += static_cast<char>(c);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    if (s.size() > 120) out += "...";
    return out;
}

struct where {
    const char* who;
    const std::string& path;
    std::string member;  // empty for the archive as a whole

    [[noreturn]] void fail(const std::string& what) const {
        std::string m = std::string(who) + ": '" + path + "': ";
        if (!member.empty()) m += "member '" + printable(member) + "': ";
        throw io_error(m + what);
    }
};

// "'a', 'b', ... (12 in all)": at most 8 names of a list, quoted and safe to print.
inline std::string name_list(const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", '" : "'") + printable(names[i]) + "'";
    if (names.size() > 8) s += ", ... (" + std::to_string(names.size()) + " in all)";
    return s;
}

inline std::string dims_str(const std::vector<std::size_t>& d) {
    std::string s = "[";
    for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

}  // namespace seqgrad::detail::npz
