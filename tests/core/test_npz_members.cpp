// .npz members that are not float arrays (metadata: strings, step counters). Before, one such
// member made every load fail, even non-strict ones whose docs say unknown members are ignored,
// and read_npz could not return integers.
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <string>

#include <seqgrad/seqgrad.hpp>

namespace sg = seqgrad;
namespace fs = std::filesystem;

namespace {
// A .npy member by hand (format 1.0).
std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string s = std::string("\x93NUMPY\x01", 7) + '\0';
    s += static_cast<char>(h.size() & 0xFF);
    s += static_cast<char>(h.size() >> 8);
    return s + h + data;
}
template <class T>
std::string le_bytes(std::initializer_list<T> values) {
    std::string s;
    for (T v : values) {
        auto u = static_cast<std::uint64_t>(v);
        for (std::size_t i = 0; i < sizeof(T); ++i) s += static_cast<char>((u >> (8 * i)) & 0xFF);
    }
    return s;
}
std::string path_for(const char* name) {
    return (fs::temp_directory_path() / ("seqgrad_npz_members_" + std::to_string(::getpid()) + "_" + name)).string();
}
template <class F>
void expect_io_error(F&& f, const std::string& needle) {
    try {
        f();
        BOOST_FAIL("expected io_error mentioning '" + needle + "'");
    } catch (const sg::io_error& e) {
        BOOST_TEST_INFO(e.what());
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos);
    }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(npz_members)

BOOST_AUTO_TEST_CASE(non_strict_load_ignores_metadata_members) {
    const auto path = path_for("meta.npz");
    sg::detail::write_zip(path, {{"w.npy", npy("<f4", "(2,)", le_bytes<std::uint32_t>({0x3f800000u, 0x40000000u}))},
                                 {"meta.npy", npy("<U4", "()", std::string(16, 'a'))},
                                 {"step.npy", npy("<i8", "()", le_bytes<std::int64_t>({42}))},
                                 {"obj.npy", npy("|O", "(1,)", "pickled bytes of any size")}});
    sg::parameter_store ps;
    auto w = ps.add("w", sg::shape{2});
    sg::load_npz(ps, path, {.strict = false});
    BOOST_TEST(w.value<float>()(0) == 1.0f);
    BOOST_TEST(w.value<float>()(1) == 2.0f);
    expect_io_error([&] { sg::load_npz(ps, path); }, "name no parameter of the store");
    expect_io_error([&] { sg::read_npz(path); }, "dtype '<U4' is not supported");
    auto arrays = sg::read_npz(path, true);
    BOOST_TEST(arrays.size() == 2u);
    BOOST_TEST(arrays.at("step")() == 42.0);
    fs::remove(path);
}

BOOST_AUTO_TEST_CASE(read_npz_returns_integers_and_bools) {
    const auto path = path_for("ints.npz");
    sg::detail::write_zip(path, {{"i4.npy", npy("<i4", "(3,)", le_bytes<std::int32_t>({-5, 0, 7}))},
                                 {"u1.npy", npy("|u1", "(2,)", le_bytes<std::uint8_t>({200, 1}))},
                                 {"i2.npy", npy("<i2", "(1, 2)", le_bytes<std::int16_t>({-32768, 32767}))},
                                 {"b.npy", npy("|b1", "(2,)", le_bytes<std::uint8_t>({1, 0}))},
                                 {"big.npy", npy("<u8", "()", le_bytes<std::uint64_t>({std::uint64_t(1) << 53}))}});
    auto a = sg::read_npz(path);
    BOOST_TEST(a.at("i4")(0) == -5.0);
    BOOST_TEST(a.at("i4")(2) == 7.0);
    BOOST_TEST(a.at("u1")(0) == 200.0);
    BOOST_TEST(a.at("i2")(0, 0) == -32768.0);
    BOOST_TEST(a.at("i2")(0, 1) == 32767.0);
    BOOST_TEST(a.at("b")(0) == 1.0);
    BOOST_TEST(a.at("b")(1) == 0.0);
    BOOST_TEST(a.at("big")() == 9007199254740992.0);
    sg::detail::write_zip(path,
                          {{"huge.npy", npy("<i8", "()", le_bytes<std::int64_t>({(std::int64_t(1) << 60) + 1}))}});
    expect_io_error([&] { sg::read_npz(path); }, "not exactly representable");
    sg::detail::write_zip(path, {{"short.npy", npy("<i4", "(3,)", le_bytes<std::int32_t>({1, 2}))}});
    expect_io_error([&] { sg::read_npz(path); }, "data is 8 bytes");
    fs::remove(path);
}

BOOST_AUTO_TEST_CASE(a_non_float_member_naming_a_parameter_is_an_error_in_both_modes) {
    const auto path = path_for("intparam.npz");
    sg::detail::write_zip(path, {{"w.npy", npy("<i4", "(2,)", le_bytes<std::int32_t>({1, 2}))}});
    sg::parameter_store ps;
    ps.add("w", sg::shape{2});
    expect_io_error([&] { sg::load_npz(ps, path, {.strict = false}); }, "for parameter 'w' (expected '<f4' or '<f8')");
    sg::detail::write_zip(path, {{"w.npy", npy("<U4", "(2,)", std::string(32, 'a'))}});
    expect_io_error([&] { sg::load_npz(ps, path, {.strict = false}); }, "dtype '<U4' is not supported");
    fs::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
