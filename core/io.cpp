// Writing .npz archives (atomic: a temporary renamed into place) and the public io functions that
// write; reading is core/npz_read.cpp.
#include "io.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string_view>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npz_format.hpp"

namespace seqgrad {

static_assert(XTENSOR_DEFAULT_LAYOUT == xt::layout_type::row_major, "seqgrad io: xarray data must be C order");

namespace detail {
std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc) {
    static constexpr auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}
}  // namespace detail

namespace {

namespace fs = std::filesystem;
using namespace detail::npz;

// ---- writing ----------------------------------------------------------------------------------

// A writer killed mid-save (SIGKILL, power loss) leaves "<path>.seqgrad-tmp.<pid>.<n>" behind.
// Each save removes those of processes that no longer exist (kill(pid, 0) fails with ESRCH), so at
// most one per live writer remains. A pid reused by another live process keeps its file: never
// wrong, at worst left until that process ends. The infix is the library's own: a user's
// "model.npz.tmp.2024.05" is not a temporary of ours and stays.
constexpr const char* temporary_infix = ".seqgrad-tmp.";

void remove_stale_temporaries(const std::string& path) {
    const fs::path target(path);
    const std::string prefix = target.filename().string() + temporary_infix;
    std::error_code ec;
    const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string rest = name.substr(prefix.size()), digits = rest.substr(0, rest.find('.'));
        const std::string count = digits.size() < rest.size() ? rest.substr(digits.size() + 1) : "";
        if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos ||
            count.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const auto pid = static_cast<pid_t>(std::stol(digits));
        if (pid <= 0 || pid == ::getpid()) continue;
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
            std::error_code rm;
            fs::remove(it->path(), rm);
        }
    }
}

// The file a save to `path` writes: the end of its chain of symbolic links, followed as open(2)
// follows them, so that a save through a link updates the file it names (as numpy.save and
// torch.save do) instead of replacing the link with a file of its own. A dangling link is
// followed too: its target is created, as open(O_CREAT) would. A relative target is relative to
// the link's directory; the directory is not normalised lexically, since ".." after a linked
// directory means its physical parent.
fs::path resolve_links(const fs::path& path, const where& w) {
    fs::path p = path;
    for (int hops = 0;; ++hops) {
        std::error_code ec;
        if (!fs::is_symlink(fs::symlink_status(p, ec))) return p;
        if (hops == 40) w.fail("too many levels of symbolic links (a cycle?)");  // Linux's ELOOP limit
        const fs::path to = fs::read_symlink(p, ec);
        if (ec) w.fail("cannot read the symbolic link '" + p.string() + "': " + ec.message());
        p = to.is_absolute() ? to : p.parent_path() / to;
    }
}

}  // namespace

// Writes to "<target>.seqgrad-tmp.<pid>.<n>", syncs it and renames it over target (path with its links
// resolved: the temporary sits in the target's directory, on its file system, so the rename is
// atomic); removes it on any failure. n numbers the saves of this process: two threads saving to
// one path write two temporaries (one "<path>.tmp.<pid>" renamed the other's half-written file,
// or failed to find its own).
void detail::atomic_write(const std::string& path, const char* who, const std::function<void(std::ostream&)>& body) {
    static std::atomic<std::uint64_t> saves{0};
    const where w{who, path, {}};
    const std::string target = resolve_links(path, w).string();
    // The rename replaces whatever the destination is: a device or FIFO (--save /dev/null, run as
    // root) would become a regular file. Only a regular file (or nothing yet) is replaced.
    std::error_code st;
    const fs::file_status status = fs::status(target, st);
    if (fs::exists(status) && !fs::is_regular_file(status) && !fs::is_directory(status))
        w.fail(
            "exists and is not a regular file (a save writes a temporary file and renames it over the "
            "destination, which would replace it)");
    remove_stale_temporaries(target);
    const std::string tmp = target + temporary_infix + std::to_string(::getpid()) + "." + std::to_string(saves++);
    bool created = false;
    try {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) w.fail("cannot create temporary file '" + tmp + "': " + std::strerror(errno));
        created = true;
        body(out);
        out.flush();
        if (!out) w.fail("write to '" + tmp + "' failed (disk full?)");
        out.close();
        if (out.fail()) w.fail("closing '" + tmp + "' failed");
        int fd = ::open(tmp.c_str(), O_RDONLY);
        if (fd < 0 || ::fsync(fd) != 0) {
            std::string why = std::strerror(errno);
            if (fd >= 0) ::close(fd);
            w.fail("syncing '" + tmp + "' failed: " + why);
        }
        ::close(fd);
        // A file replaced keeps its permission bits (a private 0600 checkpoint stays private), as
        // numpy.save and torch.save, which write in place, keep them.
        struct stat old {};
        if (::stat(target.c_str(), &old) == 0 && ::chmod(tmp.c_str(), old.st_mode & 07777) != 0)
            w.fail("cannot give '" + tmp + "' the permissions of the file it replaces: " + std::strerror(errno));
        std::error_code ec;
        fs::rename(tmp, target, ec);
        if (ec) w.fail("cannot rename '" + tmp + "' to the destination: " + ec.message());
    } catch (...) {
        std::error_code ec;
        if (created) fs::remove(tmp, ec);
        throw;
    }
    // Make the rename itself durable; failing here loses nothing already written.
    fs::path dir = fs::path(target).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
}

namespace {

// A stored (uncompressed) zip written member by member, so only one member is in memory.
class zip_writer {
public:
    zip_writer(std::ostream& os, const where& w) : os_(os), w_(w) {}

    void add(const std::string& name, const std::string& data) {
        if (name.empty() || name.size() > 0xFFFF) w_.fail("member name of length " + std::to_string(name.size()));
        if (count_ >= 0xFFFF || data.size() >= max32 || offset_ >= max32)
            w_.fail("archive exceeds 4 GiB or 65535 members (zip64 is not written)");
        std::uint16_t flags = 0;
        for (char c : name)
            if (static_cast<unsigned char>(c) >= 0x80) flags = 0x800;  // UTF-8 name
        const std::uint32_t crc = detail::crc32(data.data(), data.size());
        // signature, version needed (2.0), flags, method (stored), time, date, crc, sizes, name, extra
        std::string h = le_fields({{sig_local, 4},
                                   {20, 2},
                                   {flags, 2},
                                   {0, 2},
                                   {0, 2},
                                   {dos_date, 2},
                                   {crc, 4},
                                   {data.size(), 4},
                                   {data.size(), 4},
                                   {name.size(), 2},
                                   {0, 2}});
        h += name;
        os_.write(h.data(), static_cast<std::streamsize>(h.size()));
        os_.write(data.data(), static_cast<std::streamsize>(data.size()));

        // signature, made by (Unix, 2.0), the local header's fields, comment, disk, attributes, offset
        central_ += le_fields({{sig_central, 4}, {0x0314, 2}});
        central_.append(h, 4, 26);
        central_ += le_fields({{0, 2}, {0, 2}, {0, 2}, {0100644u << 16, 4}, {offset_, 4}});
        central_ += name;
        offset_ += h.size() + data.size();
        ++count_;
    }

    void finish() {
        if (offset_ >= max32 || central_.size() >= max32) w_.fail("archive exceeds 4 GiB (zip64 is not written)");
        // signature, disk, disk of the directory, entries (twice), directory size and offset, comment
        const std::string e = le_fields(
            {{sig_end, 4}, {0, 2}, {0, 2}, {count_, 2}, {count_, 2}, {central_.size(), 4}, {offset_, 4}, {0, 2}});
        os_.write(central_.data(), static_cast<std::streamsize>(central_.size()));
        os_.write(e.data(), static_cast<std::streamsize>(e.size()));
    }

private:
    std::ostream& os_;
    const where& w_;
    std::string central_;
    std::uint64_t offset_ = 0;
    std::size_t count_ = 0;
};

using member_source = std::function<std::pair<std::string, std::string>(std::size_t)>;

void write_archive(const std::string& path, const char* who, std::size_t n, const member_source& member) {
    const where w{who, path, {}};
    detail::atomic_write(path, who, [&](std::ostream& os) {
        zip_writer z(os, w);
        for (std::size_t i = 0; i < n; ++i) {
            auto [name, bytes] = member(i);
            z.add(name, bytes);
        }
        z.finish();
    });
}

// One .npy file (format 1.0, C order) holding n values of Src as '<f4' or '<f8'.
template <class Src>
std::string encode_npy(const std::vector<std::size_t>& dims, const Src* v, std::size_t n, dtype dt) {
    std::string dict = std::string("{'descr': '") + (dt == dtype::f32 ? "<f4" : "<f8") +
                       "', 'fortran_order': False, 'shape': (";
    for (std::size_t i = 0; i < dims.size(); ++i)
        dict += std::to_string(dims[i]) + (dims.size() == 1 ? "," : i + 1 < dims.size() ? ", " : "");
    dict += "), }";
    dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');  // numpy aligns the data to 64
    dict += '\n';
    std::string s = "\x93NUMPY";
    s += '\x01';
    s += '\x00';
    put_le(s, dict.size(), 2);
    s += dict;
    s.reserve(s.size() + n * (dt == dtype::f32 ? 4 : 8));
    for (std::size_t i = 0; i < n; ++i) {
        if (dt == dtype::f32) put_le(s, std::bit_cast<std::uint32_t>(static_cast<float>(v[i])), 4);
        else put_le(s, std::bit_cast<std::uint64_t>(static_cast<double>(v[i])), 8);
    }
    return s;
}

}  // namespace

void write_npz(const std::string& path, const std::map<std::string, xt::xarray<double>>& arrays, dtype dt) {
    const where w{"write_npz", path, {}};
    for (auto& [key, a] : arrays) {
        if (key.empty()) w.fail("empty array name");
        if (a.dimension() > max_rank)
            where{"write_npz", path, key + ".npy"}.fail("rank " + std::to_string(a.dimension()) +
                                                        " is above seqgrad's maximum of " + std::to_string(max_rank));
        // Rounding a finite double beyond float's range would write inf (and is undefined in C++).
        const std::size_t k = dt == dtype::f32 ? detail::first_beyond_float(a.data(), a.size()) : a.size();
        if (k < a.size())
            where{"write_npz", path, key + ".npy"}.fail("value " + detail::number(a.data()[k]) + " at index " +
                                                        std::to_string(k) +
                                                        " does not fit '<f4' (expected |x| <= 3.4e38, or inf or nan; "
                                                        "write dtype::f64 to keep it)");
    }
    auto it = arrays.begin();
    write_archive(path, "write_npz", arrays.size(), [&](std::size_t) {
        auto& [key, a] = *it++;
        std::vector<std::size_t> dims(a.shape().begin(), a.shape().end());
        return std::pair{key + ".npy", encode_npy(dims, a.data(), a.size(), dt)};
    });
}

void save_npz(const parameter_store& ps, const std::string& path) {
    detail::write_arrays(path, "save_npz", ps.size(), [&](std::size_t i) {
        const parameter p = ps[i];
        const void* data = p.scalar_type() == dtype::f32 ? static_cast<const void*>(p.value<float>().data())
                                                         : static_cast<const void*>(p.value<double>().data());
        return detail::npy_array{p.name(), p.shape().to_vector(), p.scalar_type(), data};
    });
}

namespace detail {
void write_arrays(const std::string& path, const char* who, std::size_t count,
                  const std::function<npy_array(std::size_t)>& array) {
    write_archive(path, who, count, [&](std::size_t i) {
        const npy_array a = array(i);
        std::size_t n = 1;
        for (std::size_t d : a.dims) n *= d;
        return std::pair{a.key + ".npy", a.dt == dtype::f32
                                             ? encode_npy(a.dims, static_cast<const float*>(a.data), n, dtype::f32)
                                             : encode_npy(a.dims, static_cast<const double*>(a.data), n, dtype::f64)};
    });
}

void write_zip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members) {
    write_archive(path, "write_zip", members.size(), [&](std::size_t i) { return members[i]; });
}
}  // namespace detail

}  // namespace seqgrad
