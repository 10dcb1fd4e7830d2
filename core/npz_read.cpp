// Reading .npz archives: every offset, size and CRC checked before it is trusted (never a crash
// or a wrong value on a corrupt file), zip64 aware.
#include "io.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "npz_format.hpp"

namespace seqgrad {

namespace {

namespace fs = std::filesystem;
using namespace detail::npz;

// ---- reading ----------------------------------------------------------------------------------

// Element types read from .npy members: floats for parameters, integers and booleans for
// read_npz (metadata such as step counters); anything else is kept as `unsupported`.
enum class elem : std::uint8_t { f4, f8, i1, i2, i4, i8, u1, u2, u4, u8, b1 };

struct npz_member {
    std::string key;  // member name without ".npy"
    std::vector<std::size_t> dims;
    elem type = elem::f4;
    bool f8 = false;
    const unsigned char* data = nullptr;
    std::size_t count = 0;
    // Why the member cannot be read (dtype, order, rank), or empty. Such a member is an error only
    // where it is used: load_npz in non-strict mode ignores it when it names no parameter.
    std::string unsupported;
};

struct npz_file {
    std::vector<unsigned char> bytes;
    std::vector<npz_member> members;  // in central directory order
};

struct span {
    const unsigned char* p;
    std::uint64_t n;
    bool has(std::uint64_t pos, std::uint64_t len) const { return pos <= n && len <= n - pos; }
    std::uint64_t at(std::uint64_t pos, int bytes) const { return get_le(p + pos, bytes); }  // after has()
};

// Applies a zip64 extended-information extra field (id 1) in [pos, pos + len) to the fields
// that are saturated, in the order the zip specification gives.
void apply_zip64(const span& b, std::uint64_t pos, std::uint64_t len, std::uint64_t& usize, std::uint64_t& csize,
                 std::uint64_t* offset, std::uint64_t* disk, const where& w) {
    const std::uint64_t end = pos + len;
    while (end - pos >= 4) {
        const std::uint64_t id = b.at(pos, 2), sz = b.at(pos + 2, 2);
        pos += 4;
        if (sz > end - pos) w.fail("extra field truncated");
        if (id == 1) {
            std::uint64_t q = pos;
            auto take = [&](std::uint64_t& v, int bytes) {
                if (pos + sz - q < static_cast<std::uint64_t>(bytes)) w.fail("zip64 extra field too short");
                v = b.at(q, bytes);
                q += bytes;
            };
            if (usize == max32) take(usize, 8);
            if (csize == max32) take(csize, 8);
            if (offset && *offset == max32) take(*offset, 8);
            if (disk && *disk == 0xFFFF) take(*disk, 4);
        }
        pos += sz;
    }
}

// The .npy header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
class header_parser {
public:
    header_parser(std::string_view s, const where& w) : s_(s), w_(w) {}

    void parse(std::string& descr, bool& fortran, std::vector<std::size_t>& dims) {
        std::set<std::string> seen;
        expect('{');
        while (!eat('}')) {
            std::string key = string_literal();
            if (!seen.insert(key).second) bad("key '" + printable(key) + "' appears twice");
            expect(':');
            if (key == "descr") descr = descr_value();
            else if (key == "fortran_order") fortran = boolean();
            else if (key == "shape") dims = tuple();
            else bad("unexpected key '" + printable(key) + "'");
            if (!eat(',')) {
                expect('}');
                break;
            }
        }
        skip_space();
        if (i_ != s_.size()) bad("text after the closing brace");
        if (seen.size() != 3) bad("it needs the keys 'descr', 'fortran_order' and 'shape'");
    }

private:
    [[noreturn]] void bad(const std::string& what) const {
        w_.fail("bad .npy header (" + what + "): \"" + printable(s_.substr(0, 200)) + "\"");
    }
    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
        return false;
    }
    void expect(char c) {
        if (!eat(c)) bad(std::string("expected '") + c + "'");
    }
    std::string string_literal() {
        skip_space();
        if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) bad("expected a string");
        const char q = s_[i_++];
        const std::size_t start = i_;
        while (i_ < s_.size() && s_[i_] != q && s_[i_] != '\\') ++i_;
        if (i_ >= s_.size() || s_[i_] != q) bad("unterminated or escaped string");
        return std::string(s_.substr(start, i_++ - start));
    }
    // A structured dtype's descr is a list of fields, e.g. [('x', '<f4'), ('y', '<i4', (2,))]: kept as
    // its text, so that the member is an unsupported dtype (skipped where skipping is asked for).
    std::string descr_value() {
        skip_space();
        if (i_ >= s_.size() || s_[i_] != '[') return string_literal();
        const std::size_t start = i_;
        int depth = 0;
        do {
            if (i_ >= s_.size()) bad("unterminated list in 'descr'");
            const char c = s_[i_];
            if (c == '\'' || c == '"') {
                string_literal();
                continue;
            }
            depth += (c == '[' || c == '(') - (c == ']' || c == ')');
            ++i_;
        } while (depth > 0);
        return std::string(s_.substr(start, i_ - start));
    }
    bool boolean() {
        skip_space();
        for (auto [word, value] : {std::pair{std::string_view("True"), true}, {std::string_view("False"), false}})
            if (s_.substr(i_, word.size()) == word) {
                i_ += word.size();
                return value;
            }
        bad("fortran_order is not True or False");
    }
    std::vector<std::size_t> tuple() {
        std::vector<std::size_t> dims;
        expect('(');
        if (eat(')')) return dims;
        for (;;) {
            skip_space();
            std::uint64_t v = 0;
            const std::size_t start = i_;
            for (; i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; ++i_) {
                if (v > (std::uint64_t(1) << 48)) bad("dimension too large");
                v = v * 10 + static_cast<std::uint64_t>(s_[i_] - '0');
            }
            if (i_ == start) bad("shape is not a tuple of non-negative integers");
            if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long
            dims.push_back(static_cast<std::size_t>(v));
            if (eat(',')) {
                if (eat(')')) return dims;
            } else if (dims.size() > 1 && eat(')')) {
                return dims;
            } else {
                bad("shape is not a tuple of non-negative integers");
            }
        }
    }

    std::string_view s_;
    const where& w_;
    std::size_t i_ = 0;
};

// Parses one .npy member in place; m.data points into the archive's bytes.
void parse_npy(const unsigned char* p, std::uint64_t n, npz_member& m, const where& w) {
    const span b{p, n};
    if (!b.has(0, 10)) w.fail("truncated .npy header (" + std::to_string(n) + " bytes)");
    if (std::memcmp(p, "\x93NUMPY", 6) != 0) w.fail("bad .npy magic");
    std::uint64_t hlen = 0, hstart = 0;
    if (p[6] == 1 && p[7] == 0) {
        hlen = b.at(8, 2);
        hstart = 10;
    } else if ((p[6] == 2 || p[6] == 3) && p[7] == 0 && b.has(0, 12)) {
        hlen = b.at(8, 4);
        hstart = 12;
    } else {
        w.fail("unsupported .npy format version " + std::to_string(p[6]) + "." + std::to_string(p[7]));
    }
    if (!b.has(hstart, hlen)) w.fail("truncated .npy header");
    std::string descr;
    bool fortran = false;
    header_parser({reinterpret_cast<const char*>(p + hstart), hlen}, w).parse(descr, fortran, m.dims);
    static const std::pair<std::string_view, elem> known[] = {{"<f4", elem::f4}, {"<f8", elem::f8}, {"|i1", elem::i1},
                                                              {"<i1", elem::i1}, {"<i2", elem::i2}, {"<i4", elem::i4},
                                                              {"<i8", elem::i8}, {"|u1", elem::u1}, {"<u1", elem::u1},
                                                              {"<u2", elem::u2}, {"<u4", elem::u4}, {"<u8", elem::u8},
                                                              {"|b1", elem::b1}};
    std::uint64_t item = 0;
    for (auto [name, type] : known)
        if (descr == name) {
            m.type = type;
            item = name[2] == '8' ? 8 : name[2] == '4' ? 4 : name[2] == '2' ? 2 : 1;
        }
    m.data = p + hstart + hlen;
    if (item == 0)
        m.unsupported = "dtype '" + printable(descr) +
                        "' is not supported (expected '<f4' or '<f8', or little-endian integers or bools)";
    else if (fortran) m.unsupported = "fortran_order True is not supported (expected C order)";
    else if (m.dims.size() > max_rank)
        m.unsupported = "rank " + std::to_string(m.dims.size()) + " (shape " + dims_str(m.dims) +
                        ") is above seqgrad's maximum of " + std::to_string(max_rank);
    if (!m.unsupported.empty()) return;  // its size cannot be checked (or need not be): never read
    m.f8 = m.type == elem::f8;
    const std::uint64_t have = n - hstart - hlen, limit = ~std::uint64_t(0) / 8;
    std::uint64_t count = 1;
    for (std::size_t d : m.dims) count = (d != 0 && count > limit / d) ? limit + 1 : count * d;
    if (count > limit || count * item != have)
        w.fail("data is " + std::to_string(have) + " bytes, shape " + dims_str(m.dims) + " of '" + descr + "' needs " +
               (count > limit ? std::string("over 2^61 elements") : std::to_string(count * item)));
    m.count = static_cast<std::size_t>(count);
}

npz_file parse_npz(const std::string& path, const char* who) {
    const where w{who, path, {}};
    npz_file f;
    {
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) w.fail(ec ? "cannot open: " + ec.message() : "not a regular file");
        std::ifstream in(path, std::ios::binary);
        if (!in) w.fail(std::string("cannot open for reading: ") + std::strerror(errno));
        in.seekg(0, std::ios::end);
        const std::streamoff size = in.tellg();
        in.seekg(0, std::ios::beg);
        if (size < 0 || !in) w.fail("cannot determine the file size");
        f.bytes.resize(static_cast<std::size_t>(size));
        in.read(reinterpret_cast<char*>(f.bytes.data()), size);
        if (in.gcount() != size) w.fail("read error");
    }
    const span b{f.bytes.data(), f.bytes.size()};

    // End of central directory: the last record whose comment reaches exactly to the end.
    std::uint64_t eocd = max32 + 1;
    for (std::uint64_t pos = b.n >= 22 ? b.n - 22 : 0; b.n >= 22 && b.n - 22 - pos <= 0xFFFF; --pos) {
        if (b.at(pos, 4) == sig_end && pos + 22 + b.at(pos + 20, 2) == b.n) {
            eocd = pos;
            break;
        }
        if (pos == 0) break;
    }
    if (eocd > max32) w.fail("truncated or not a zip file (no end of central directory record)");
    std::uint64_t disk = b.at(eocd + 4, 2), cd_disk = b.at(eocd + 6, 2), on_disk = b.at(eocd + 8, 2);
    std::uint64_t entries = b.at(eocd + 10, 2), cd_size = b.at(eocd + 12, 4), cd_off = b.at(eocd + 16, 4);
    std::uint64_t cd_limit = eocd;
    if (eocd >= 20 && b.at(eocd - 20, 4) == sig_locator64) {
        const std::uint64_t z = b.at(eocd - 12, 8);
        if (b.at(eocd - 16, 4) != 0 || b.at(eocd - 4, 4) > 1) w.fail("multi-disk archives are not supported");
        if (z > eocd - 20 || eocd - 20 - z < 56) w.fail("zip64 end of central directory record out of bounds");
        if (b.at(z, 4) != sig_end64) w.fail("bad zip64 end of central directory signature");
        disk = b.at(z + 16, 4), cd_disk = b.at(z + 20, 4), on_disk = b.at(z + 24, 8);
        entries = b.at(z + 32, 8), cd_size = b.at(z + 40, 8), cd_off = b.at(z + 48, 8);
        cd_limit = z;
    }
    if (disk != 0 || cd_disk != 0 || on_disk != entries) w.fail("multi-disk archives are not supported");
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        w.fail("truncated (central directory at " + std::to_string(cd_off) + " + " + std::to_string(cd_size) +
               " bytes is out of bounds)");
    if (entries > cd_size / 46) w.fail("central directory too small for " + std::to_string(entries) + " entries");

    std::set<std::string> keys;
    std::uint64_t pos = cd_off;
    const std::uint64_t cd_end = cd_off + cd_size;
    for (std::uint64_t e = 0; e < entries; ++e) {
        if (cd_end - pos < 46) w.fail("central directory truncated");
        if (b.at(pos, 4) != sig_central) w.fail("bad central directory signature at " + std::to_string(pos));
        const std::uint64_t flags = b.at(pos + 8, 2), method = b.at(pos + 10, 2), crc = b.at(pos + 16, 4);
        std::uint64_t csize = b.at(pos + 20, 4), usize = b.at(pos + 24, 4), disk_start = b.at(pos + 34, 2);
        std::uint64_t local = b.at(pos + 42, 4);
        const std::uint64_t nlen = b.at(pos + 28, 2), xlen = b.at(pos + 30, 2), clen = b.at(pos + 32, 2);
        if (cd_end - pos - 46 < nlen + xlen + clen) w.fail("central directory entry truncated");
        where mw{who, path, std::string(reinterpret_cast<const char*>(b.p + pos + 46), nlen)};
        apply_zip64(b, pos + 46 + nlen, xlen, usize, csize, &local, &disk_start, mw);
        pos += 46 + nlen + xlen + clen;

        if (flags & 1) mw.fail("encrypted members are not supported");
        if (method == 8) mw.fail("compressed npz members are not supported; use numpy.savez");
        if (method != 0) mw.fail("compression method " + std::to_string(method) + " is not supported");
        if (csize != usize) mw.fail("stored member with compressed size != size");
        if (disk_start != 0) mw.fail("multi-disk archives are not supported");
        if (local >= cd_off || cd_off - local < 30) mw.fail("truncated (local header out of bounds)");
        if (b.at(local, 4) != sig_local) mw.fail("bad local header signature");
        const std::uint64_t lnlen = b.at(local + 26, 2), lxlen = b.at(local + 28, 2);
        const std::uint64_t start = local + 30 + lnlen + lxlen;
        if (start > cd_off) mw.fail("truncated (local header)");
        if (std::string_view(reinterpret_cast<const char*>(b.p + local + 30), lnlen) != mw.member)
            mw.fail("local header names '" + printable({reinterpret_cast<const char*>(b.p + local + 30), lnlen}) + "'");
        if (b.at(local + 6, 2) != flags || b.at(local + 8, 2) != method)
            mw.fail("local header and central directory disagree on the flags or method");
        if (!(flags & 8)) {  // no data descriptor: the local header has crc and sizes
            std::uint64_t lc = b.at(local + 18, 4), lu = b.at(local + 22, 4);
            apply_zip64(b, local + 30 + lnlen, lxlen, lu, lc, nullptr, nullptr, mw);
            if (b.at(local + 14, 4) != crc || lc != csize || lu != usize)
                mw.fail("local header and central directory disagree on the CRC or sizes");
        }
        if (csize > cd_off - start) mw.fail("truncated (data runs past the central directory)");
        const std::uint32_t actual = detail::crc32(b.p + start, csize);
        if (actual != crc)
            mw.fail("CRC mismatch (stored " + std::to_string(crc) + ", computed " + std::to_string(actual) + ")");

        const std::string& name = mw.member;
        if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
            mw.fail("member name does not end in .npy");
        npz_member m;
        m.key = name.substr(0, name.size() - 4);
        if (!keys.insert(m.key).second) mw.fail("appears twice");
        parse_npy(b.p + start, csize, m, mw);
        f.members.push_back(std::move(m));
    }
    if (pos != cd_end) w.fail("central directory size does not match its entries");
    return f;
}

template <class T>
void decode(const npz_member& m, T* out) {
    for (std::size_t i = 0; i < m.count; ++i) {
        if (m.f8) out[i] = static_cast<T>(std::bit_cast<double>(get_le(m.data + 8 * i, 8)));
        else out[i] = static_cast<T>(std::bit_cast<float>(static_cast<std::uint32_t>(get_le(m.data + 4 * i, 4))));
    }
}

// Integers and bools as doubles. An integer beyond 2^53 would not be exact: the member is then
// unsupported, and the reason is returned (empty when every value was decoded).
std::string decode_integer(const npz_member& m, double* out) {
    const int bytes = m.type == elem::i8 || m.type == elem::u8   ? 8
                      : m.type == elem::i4 || m.type == elem::u4 ? 4
                      : m.type == elem::i2 || m.type == elem::u2 ? 2
                                                                 : 1;
    const bool is_signed = m.type == elem::i1 || m.type == elem::i2 || m.type == elem::i4 || m.type == elem::i8;
    constexpr std::uint64_t exact = std::uint64_t(1) << 53;
    for (std::size_t i = 0; i < m.count; ++i) {
        std::uint64_t u = get_le(m.data + static_cast<std::size_t>(bytes) * i, bytes);
        double v;
        if (is_signed && bytes < 8 && (u >> (8 * bytes - 1)) & 1) u |= ~std::uint64_t(0) << (8 * bytes);
        if (is_signed) {
            const auto x = static_cast<std::int64_t>(u);
            if (x > std::int64_t(exact) || x < -std::int64_t(exact))
                return "integer " + std::to_string(x) + " at index " + std::to_string(i) +
                       " is not exactly representable as a double";
            v = static_cast<double>(x);
        } else {
            if (u > exact)
                return "integer " + std::to_string(u) + " at index " + std::to_string(i) +
                       " is not exactly representable as a double";
            v = m.type == elem::b1 ? (u != 0) : static_cast<double>(u);
        }
        out[i] = v;
    }
    return {};
}

bool is_float(const npz_member& m) { return m.unsupported.empty() && (m.type == elem::f4 || m.type == elem::f8); }

}  // namespace

std::map<std::string, xt::xarray<double>> read_npz(const std::string& path, bool skip_unsupported) {
    const npz_file f = parse_npz(path, "read_npz");
    std::map<std::string, xt::xarray<double>> out;
    for (auto& m : f.members) {
        const where mw{"read_npz", path, m.key + ".npy"};
        if (!m.unsupported.empty()) {
            if (skip_unsupported) continue;
            mw.fail(m.unsupported);
        }
        auto a = xt::xarray<double>::from_shape(m.dims);
        if (is_float(m)) {
            decode(m, a.data());
        } else if (const std::string why = decode_integer(m, a.data()); !why.empty()) {
            if (skip_unsupported) continue;
            mw.fail(why);
        }
        out.emplace(m.key, std::move(a));
    }
    return out;
}

detail::npz_contents detail::read_npz_members(const std::string& path, const char* who) {
    const npz_file f = parse_npz(path, who);
    npz_contents out;
    for (auto& m : f.members) {
        if (!is_float(m)) {
            out.other.emplace(m.key, m.unsupported.empty() ? std::string("integer or bool data") : m.unsupported);
            continue;
        }
        auto a = xt::xarray<double>::from_shape(m.dims);
        decode(m, a.data());
        out.floats.emplace(m.key, std::move(a));
    }
    return out;
}

void load_npz(parameter_store& ps, const std::string& path, load_options opts) {
    const npz_file f = parse_npz(path, "load_npz");
    const where w{"load_npz", path, {}};
    std::map<std::string_view, parameter> by_name;
    for (const parameter& p : ps.parameters()) by_name.emplace(p.name(), p);

    // Check everything first; only then touch the store.
    std::vector<std::pair<const npz_member*, parameter>> plan;
    std::vector<std::string> extra, missing;
    std::set<std::string_view> found;
    for (auto& m : f.members) {
        auto it = by_name.find(m.key);
        if (it == by_name.end()) {
            extra.push_back(m.key);
            continue;
        }
        const parameter& p = it->second;
        if (!is_float(m))
            where{"load_npz", path, m.key + ".npy"}.fail(
                (m.unsupported.empty() ? std::string("integer or bool data") : m.unsupported) + " for parameter '" +
                p.name() + "' (expected '<f4' or '<f8')");
        if (shape(m.dims) != p.shape() || m.count != p.size())
            where{"load_npz", path, m.key + ".npy"}.fail("shape " + dims_str(m.dims) + " in file, parameter '" +
                                                         p.name() + "' has " + p.shape().str());
        if (m.f8 && p.scalar_type() == dtype::f32)  // a finite double beyond float's range would load as inf
            for (std::size_t i = 0; i < m.count; ++i) {
                const double v = std::bit_cast<double>(get_le(m.data + 8 * i, 8));
                if (detail::beyond_float(v)) {
                    std::ostringstream msg;
                    msg << "'<f8' value " << v << " at index " << i << " does not fit parameter '" << p.name()
                        << "' of type f32";
                    where{"load_npz", path, m.key + ".npy"}.fail(msg.str());
                }
            }
        plan.emplace_back(&m, p);
        found.insert(p.name());
    }
    for (auto& [name, p] : by_name)
        if (!found.count(name)) missing.emplace_back(name);
    if (opts.strict && !missing.empty())
        w.fail("parameter(s) " + name_list(missing) +
               " missing from the file (load_options{.strict = false} keeps their values)");
    if (opts.strict && !extra.empty())
        w.fail("member(s) " + name_list(extra) +
               " name no parameter of the store (load_options{.strict = false} ignores them)");
    // Non-strict loading that matches nothing is a naming mistake, not a partial load.
    if (plan.empty() && !f.members.empty() && !by_name.empty())
        w.fail("none of the file's " + std::to_string(f.members.size()) + " member(s) (" + name_list(extra) +
               ") names a parameter of the store (" + name_list(missing) +
               "); for a PyTorch state_dict use nn::load_torch_state");

    for (auto& [m, p] : plan) {
        if (p.scalar_type() == dtype::f32) decode(*m, p.value<float>().data());
        else decode(*m, p.value<double>().data());
        p.mark_modified();
    }
}

}  // namespace seqgrad
