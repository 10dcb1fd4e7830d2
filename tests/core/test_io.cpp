// Checkpoint files (.npz): round trips, conversions, names and shapes, atomic saves, NumPy interop.
#include <sys/stat.h>

#include "io_helpers.hpp"

#include <thread>

BOOST_AUTO_TEST_SUITE(io)

BOOST_AUTO_TEST_CASE(crc32_matches_the_standard_check_value) {
    BOOST_TEST(sg::detail::crc32("123456789", 9) == 0xCBF43926u);
    BOOST_TEST(sg::detail::crc32("", 0) == 0u);
    const std::uint32_t part = sg::detail::crc32("1234", 4);
    BOOST_TEST(sg::detail::crc32("56789", 5, part) == 0xCBF43926u);
}

BOOST_AUTO_TEST_CASE(round_trip_is_exact_for_float_and_double) {
    for (sg::dtype dt : {sg::dtype::f32, sg::dtype::f64}) {
        BOOST_TEST_CONTEXT("dtype " << sg::to_string(dt)) {
            temp_dir dir;
            sg::parameter_store ps(dt), back(dt);
            build(ps);
            build(back, false);
            sg::save_npz(ps, dir / "m.npz");
            BOOST_TEST(dir.entries() == 1u);  // no temporary left behind
            sg::load_npz(back, dir / "m.npz");
            BOOST_TEST(snapshot(back) == snapshot(ps));
            BOOST_TEST(back.get("scale").shape().rank() == 0u);

            auto arrays = sg::read_npz(dir / "m.npz");
            BOOST_TEST(arrays.size() == 4u);
            for (auto& p : ps.parameters()) {
                BOOST_TEST_REQUIRE(arrays.count(p.name()) == 1u);
                BOOST_TEST(sg::parameter::shape_of(arrays[p.name()]).str() == p.shape().str());
                BOOST_TEST((arrays[p.name()] == p.value_as_double()));
            }
            // The bytes are what numpy expects: a stored zip of 64-byte-aligned v1.0 .npy files.
            const std::string bytes = slurp(dir / "m.npz");
            BOOST_TEST(bytes.substr(0, 4) == std::string("PK\x03\x04"));
            BOOST_TEST(bytes.substr(30, 13) == "encoder.w.npy");
            const std::string descr = dt == sg::dtype::f32 ? "'<f4'" : "'<f8'";
            BOOST_TEST(bytes.find("{'descr': " + descr + ", 'fortran_order': False, 'shape': (3, 4), }") !=
                       std::string::npos);
            BOOST_TEST(bytes.find("'shape': (5,), }") != std::string::npos);
            BOOST_TEST(bytes.find("'shape': (), }") != std::string::npos);
            for (auto [begin, end] : member_spans(bytes)) BOOST_TEST((10 + le(bytes, begin + 8, 2)) % 64 == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(loading_converts_between_float_and_double) {
    temp_dir dir;
    sg::parameter_store f(sg::dtype::f32), d(sg::dtype::f64), f_back(sg::dtype::f32), d_back(sg::dtype::f64);
    build(f);
    build(d);
    build(f_back, false);
    build(d_back, false);
    sg::save_npz(f, dir / "f.npz");
    sg::save_npz(d, dir / "d.npz");
    sg::load_npz(d_back, dir / "f.npz");  // float -> double is exact
    BOOST_TEST(snapshot(d_back) == snapshot(f));
    sg::load_npz(f_back, dir / "d.npz");  // double -> float rounds like the store does
    BOOST_TEST(snapshot(f_back) == snapshot(f));
    // A finite double beyond float's range is refused (it loaded as inf), the store untouched; an
    // inf, and a double that only underflows, load.
    sg::parameter_store wide(sg::dtype::f64), narrow(sg::dtype::f32);
    wide.add("a", xt::xarray<double>{1.0});
    const sg::parameter w = wide.add("w", xt::xarray<double>{0.5, -1e39, 1e-50});
    narrow.add("a", xt::xarray<double>{2.0});
    narrow.add("w", xt::xarray<double>{1.0, 2.0, 3.0});
    sg::save_npz(wide, dir / "wide.npz");
    const auto before = snapshot(narrow);
    check_io_error([&] { sg::load_npz(narrow, dir / "wide.npz"); },
                   {"load_npz", "'w.npy'", "'<f8' value -1e+39 at index 1 does not fit parameter 'w' of type f32"});
    BOOST_TEST(snapshot(narrow) == before);
    w.value<double>()(1) = -std::numeric_limits<double>::infinity();
    sg::save_npz(wide, dir / "wide.npz");
    sg::load_npz(narrow, dir / "wide.npz");
    BOOST_TEST(std::isinf(narrow.get("w").value<float>()(1)));
}

BOOST_AUTO_TEST_CASE(write_npz_and_read_npz_round_trip_arbitrary_arrays) {
    temp_dir dir;
    std::map<std::string, xt::xarray<double>> in;
    in["x"] = xt::xarray<double>{{1.5, -2.25, 1e300}, {0.1, -0.0, 3.0}};
    in["scalar"] = xt::xarray<double>::from_shape(std::vector<std::size_t>{});
    in["scalar"]() = 42.0;
    in["empty"] = xt::xarray<double>::from_shape({0, 3});
    in["odd"] = xt::xarray<double>{std::numeric_limits<double>::infinity(), std::nan("")};
    sg::write_npz(dir / "a.npz", in);
    auto out = sg::read_npz(dir / "a.npz");
    BOOST_TEST(out.size() == 4u);
    BOOST_TEST((out["x"] == in["x"]));
    BOOST_TEST(std::signbit(out["x"](1, 1)));
    BOOST_TEST(out["scalar"].dimension() == 0u);
    BOOST_TEST(out["scalar"]() == 42.0);
    BOOST_TEST(sg::parameter::shape_of(out["empty"]).str() == "[0, 3]");
    BOOST_TEST(std::isinf(out["odd"](0)));
    BOOST_TEST(std::isnan(out["odd"](1)));

    check_io_error([&] { sg::write_npz(dir / "f.npz", in, sg::dtype::f32); }, {"'x.npy'", "value 1e+300"});
    in["x"](0, 2) = 3e38;  // within float's range
    sg::write_npz(dir / "f.npz", in, sg::dtype::f32);
    out = sg::read_npz(dir / "f.npz");
    BOOST_TEST(out["x"](0, 1) == -2.25);
    BOOST_TEST(out["x"](1, 0) == static_cast<double>(0.1f));
    BOOST_TEST(out["x"](0, 2) == static_cast<double>(3e38f));
    BOOST_TEST(slurp(dir / "f.npz").find("'<f4'") != std::string::npos);

    sg::write_npz(dir / "none.npz", {});  // an empty archive is valid too
    BOOST_TEST(sg::read_npz(dir / "none.npz").empty());

    check_io_error([&] { sg::write_npz(dir / "b.npz", {{"", xt::xarray<double>{1.0}}}); }, {"empty array name"});
    check_io_error(
        [&] {
            sg::write_npz(dir / "b.npz", {{"r5", xt::zeros<double>({1, 1, 1, 1, 2})}});
        },
        {"'r5.npy'", "rank 5"});
    BOOST_TEST(!fs::exists(dir / "b.npz"));
}

BOOST_AUTO_TEST_CASE(shape_mismatch_throws_and_leaves_the_store_untouched) {
    temp_dir dir;
    sg::parameter_store ps, other;
    ps.add("a", pattern(sg::shape{2}, 1.0));
    ps.add("w", pattern(sg::shape{3, 4}, 2.0));
    other.add("a", pattern(sg::shape{2}, 7.0));  // comes first in the file: must not be loaded either
    other.add("w", pattern(sg::shape{4, 3}, 8.0));
    sg::save_npz(ps, dir / "m.npz");
    const auto before = snapshot(other);
    check_io_error([&] { sg::load_npz(other, dir / "m.npz"); },
                   {"load_npz", "m.npz", "'w.npy'", "shape [3, 4] in file, parameter 'w' has [4, 3]"});
    BOOST_TEST(snapshot(other) == before);
    check_io_error([&] { sg::load_npz(other, dir / "m.npz", {.strict = false}); }, {"shape [3, 4] in file"});
    BOOST_TEST(snapshot(other) == before);
}

BOOST_AUTO_TEST_CASE(strict_load_requires_the_same_names) {
    temp_dir dir;
    sg::parameter_store ab, abc, a;
    ab.add("a", pattern(sg::shape{2}, 1.0));
    ab.add("b.c", pattern(sg::shape{}, 2.0));
    sg::save_npz(ab, dir / "ab.npz");

    abc.add("a", sg::shape{2});
    abc.add("b.c", sg::shape{});
    abc.add("z.d", pattern(sg::shape{3}, 5.0));
    const auto before = snapshot(abc);
    check_io_error([&] { sg::load_npz(abc, dir / "ab.npz"); }, {"'z.d'", "missing from the file"});
    BOOST_TEST(snapshot(abc) == before);
    sg::load_npz(abc, dir / "ab.npz", {.strict = false});
    BOOST_TEST((abc.get("a").value_as_double() == ab.get("a").value_as_double()));
    BOOST_TEST((abc.get("b.c").value_as_double() == ab.get("b.c").value_as_double()));
    BOOST_TEST((abc.get("z.d").value<float>() == xt::cast<float>(pattern(sg::shape{3}, 5.0))));  // kept

    a.add("a", sg::shape{2});
    check_io_error([&] { sg::load_npz(a, dir / "ab.npz"); }, {"'b.c'", "no parameter of the store"});
    BOOST_TEST((a.get("a").value_as_double() == xt::zeros<double>({2})));
    sg::load_npz(a, dir / "ab.npz", {.strict = false});
    BOOST_TEST((a.get("a").value_as_double() == ab.get("a").value_as_double()));
}

BOOST_AUTO_TEST_CASE(bad_members_are_rejected_with_what_was_found) {
    temp_dir dir;
    const std::string f4x3(12, '\0');
    const std::string path = dir / "bad.npz";
    auto expect = [&](const std::string& member, const std::string& dict, const std::string& data,
                      const std::vector<std::string>& pieces, const std::string& magic = "\x93NUMPY\x01") {
        sg::detail::write_zip(path, {{member, npy(dict, data, magic)}});
        check_io_error([&] { sg::read_npz(path); }, pieces);
    };
    const std::string ok_tail = "'fortran_order': False, 'shape': (3,), }";
    expect("w.npy", "{'descr': '>f4', " + ok_tail, f4x3, {"bad.npz", "member 'w.npy'", "dtype '>f4'"});
    expect("w.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0'), {"dtype '<c8'"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 1), }", f4x3, {"fortran_order True"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 3), }", f4x3,
           {"rank 5", "[1, 1, 1, 1, 3]"});
    expect("w.npy", "{'descr': '<f4', " + ok_tail, std::string(11, '\0'), {"data is 11 bytes", "needs 12"});
    expect("w.npy", "{'descr': '<f4', " + ok_tail, std::string(16, '\0'), {"data is 16 bytes"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", f4x3, {"not a tuple"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", f4x3, {"not a tuple"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False}", "", {"'descr', 'fortran_order' and 'shape'"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", f4x3, {"unexpected key"});
    expect("w.npy", "{'descr': '<f4', 'descr': '<f4', " + ok_tail, f4x3, {"appears twice"});
    expect("w.npy", "{'descr': '<f4', " + ok_tail + " junk", f4x3, {"text after"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "", {"too large"});
    expect("w.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536), }", "",
           {"needs over 2^61 elements"});
    expect("w.npy", "{'descr': '<f4', " + ok_tail, f4x3, {"bad .npy magic"}, "\x93NUMPX\x01");
    expect("w.npy", "{'descr': '<f4', " + ok_tail, f4x3, {"version 9.0"}, "\x93NUMPY\x09");
    expect("w.txt", "{'descr': '<f4', " + ok_tail, f4x3, {"does not end in .npy"});

    sg::detail::write_zip(path, {{"w.npy", "\x93NUM"}});
    check_io_error([&] { sg::read_npz(path); }, {"truncated .npy header"});
    const std::string good = npy("{'descr': '<f4', " + ok_tail, f4x3);
    sg::detail::write_zip(path, {{"w.npy", good}, {"w.npy", good}});
    check_io_error([&] { sg::read_npz(path); }, {"appears twice"});

    // Accepted variants: format 2.0 (4-byte header length), Python 2 longs, double quotes.
    std::string v2 = npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L,)}", f4x3);
    v2 = "\x93NUMPY\x02" + std::string(1, '\0') + v2.substr(8, 2) + std::string(2, '\0') + v2.substr(10);
    sg::detail::write_zip(path, {{"w.npy", v2}});
    auto arrays = sg::read_npz(path);
    BOOST_TEST(sg::parameter::shape_of(arrays.at("w")).str() == "[3]");
}

// A structured dtype's descr is a list, and an integer beyond 2^53 is not exact as a double: both
// are members of a valid file that read_npz(path, true) and a non-strict load leave out (they
// failed as "bad .npy header" and "not exactly representable" whatever was asked).
BOOST_AUTO_TEST_CASE(structured_and_huge_integer_members_are_unsupported_not_corrupt) {
    temp_dir dir;
    const std::string path = dir / "mixed.npz";
    const std::string big(8, '\0'), w = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", big);
    const std::string rec =
        npy("{'descr': [('x', '<f4'), ('y', '<i4', (2,))], 'fortran_order': False, 'shape': (2,), }",
            std::string(24, '\0'));
    std::string huge_bytes(8, '\0');
    huge_bytes[7] = '\x10';  // 2^60, little-endian
    const std::string huge = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", huge_bytes);
    for (const auto& [name, member, piece] :
         {std::tuple{"rec", rec, "dtype '[('x', '<f4'), ('y', '<i4', (2,))]' is not supported"},
          std::tuple{"seed", huge, "integer 1152921504606846976 at index 0 is not exactly representable"}}) {
        BOOST_TEST_CONTEXT(name) {
            sg::detail::write_zip(path, {{"w.npy", w}, {std::string(name) + ".npy", member}});
            check_io_error([&] { sg::read_npz(path); }, {std::string("member '") + name + ".npy'", piece});
            const auto arrays = sg::read_npz(path, true);
            BOOST_TEST(arrays.size() == 1u);
            BOOST_TEST(arrays.count("w") == 1u);
            sg::parameter_store ps(sg::dtype::f64);
            ps.add("w", xt::xarray<double>{5.0});
            sg::load_npz(ps, path, {.strict = false});
            BOOST_TEST(ps.get("w").value<double>()(0) == 0.0);
        }
    }
    sg::detail::write_zip(path, {{"rec.npy", npy("{'descr': [('x', '<f4'), 'fortran_order': False, }", "")}});
    check_io_error([&] { sg::read_npz(path, true); }, {"bad .npy header", "unterminated list in 'descr'"});
}

BOOST_AUTO_TEST_CASE(saving_is_atomic) {
    temp_dir dir;
    sg::parameter_store ps, small;
    build(ps);
    small.add("only", pattern(sg::shape{2}, 9.0));

    check_io_error([&] { sg::save_npz(ps, dir / "no/such/dir/m.npz"); }, {"save_npz", "cannot create"});
    BOOST_TEST(dir.entries() == 0u);

    // Overwriting replaces the whole file, and leaves nothing else behind.
    const std::string path = dir / "m.npz";
    sg::save_npz(ps, path);
    sg::save_npz(small, path);
    BOOST_TEST(dir.entries() == 1u);
    auto arrays = sg::read_npz(path);
    BOOST_TEST(arrays.size() == 1u);
    BOOST_TEST((arrays.at("only") == small.get("only").value_as_double()));

    // A write that fails half-way leaves the old checkpoint whole and removes the temporary.
    const std::string before = slurp(path);
    check_io_error(
        [&] {
            sg::detail::write_zip(path, {{"a.npy", "x"}, {std::string(70000, 'n'), "y"}});
        },
        {"member name of length 70000"});
    BOOST_TEST(slurp(path) == before);
    BOOST_TEST(dir.entries() == 1u);

    // A directory in the way: rename fails, the directory survives, no temporary is left.
    fs::create_directory(dir / "d.npz");
    check_io_error([&] { sg::save_npz(ps, dir / "d.npz"); }, {"cannot rename"});
    BOOST_TEST(fs::is_directory(dir / "d.npz"));
    BOOST_TEST(dir.entries() == 2u);
}

// A save wrote a new file and renamed it over the old one, so a private (0600) checkpoint became
// 0644; and write_npz rounded a finite double beyond float's range to inf without a word.
BOOST_AUTO_TEST_CASE(a_save_keeps_the_permissions_and_refuses_what_float_cannot_hold) {
    temp_dir dir;
    sg::parameter_store ps;
    build(ps);
    const std::string path = dir / "m.npz";
    sg::save_npz(ps, path);
    BOOST_TEST_REQUIRE(::chmod(path.c_str(), 0600) == 0);
    sg::save_npz(ps, path);
    struct stat st {};
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0600u);

    const std::string before = slurp(path);
    check_io_error(
        [&] {
            sg::write_npz(path, {{"a", xt::xarray<double>{1.0, -1e39}}}, sg::dtype::f32);
        },
        {"write_npz", "member 'a.npy'", "value -1e+39 at index 1", "does not fit '<f4'"});
    BOOST_TEST(slurp(path) == before);
    BOOST_TEST(dir.entries() == 1u);
    sg::write_npz(path, {{"a", xt::xarray<double>{3.4e38, INFINITY}}}, sg::dtype::f32);  // in range, and inf is inf
    BOOST_TEST(sg::read_npz(path).at("a")(0) == double(3.4e38f));
}

// The rename replaced any destination: a FIFO (or a device: --save /dev/null run as root) became
// a regular file holding the archive. Such a destination is refused and left as it was.
BOOST_AUTO_TEST_CASE(saving_over_a_fifo_or_device_is_refused) {
    temp_dir dir;
    sg::parameter_store ps;
    build(ps);
    const std::string fifo = dir / "pipe.npz";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    check_io_error([&] { sg::save_npz(ps, fifo); }, {"save_npz", "pipe.npz", "not a regular file"});
    check_io_error([&] { sg::write_npz(fifo, {{"a", xt::xarray<double>{1.0}}}); }, {"not a regular file"});
    BOOST_TEST(fs::is_fifo(fifo));
    BOOST_TEST(dir.entries() == 1u);  // no temporary left either
}

// The rename replaced a symbolic link with a regular file, leaving the file it named with the old
// content (numpy.save and torch.save write through the link). A save writes through the chain of
// links, in the target's directory; a dangling link's target is created, as open(2) would.
BOOST_AUTO_TEST_CASE(saving_through_a_symbolic_link_updates_the_file_it_names) {
    temp_dir dir;
    sg::parameter_store ps, small;
    build(ps);
    small.add("only", pattern(sg::shape{2}, 9.0));
    fs::create_directory(dir / "real");
    const std::string target = dir / "real/m.npz", link = dir / "m.npz", chain = dir / "chain.npz";
    sg::save_npz(ps, target);
    fs::create_symlink("real/m.npz", link);  // relative: to the link's directory
    fs::create_symlink(link, chain);         // absolute, to a link
    sg::save_npz(small, chain);
    BOOST_TEST(fs::is_symlink(link));
    BOOST_TEST(fs::is_symlink(chain));
    const auto arrays = sg::read_npz(target);
    BOOST_TEST_REQUIRE(arrays.size() == 1u);
    BOOST_TEST((arrays.at("only") == small.get("only").value_as_double()));
    BOOST_TEST(dir.entries() == 3u);  // real/, the two links: no temporary left in either folder
    BOOST_TEST(std::distance(fs::directory_iterator(dir / "real"), {}) == 1);

    const std::string dangling = dir / "dangling.npz";
    fs::create_symlink("real/new.npz", dangling);
    sg::write_npz(dangling, {{"a", xt::xarray<double>{1.5, -2.0}}});
    BOOST_TEST(fs::is_symlink(dangling));
    BOOST_TEST((sg::read_npz(dir / "real/new.npz").at("a") == xt::xarray<double>{1.5, -2.0}));

    fs::create_symlink("loop_b.npz", dir / "loop_a.npz");
    fs::create_symlink("loop_a.npz", dir / "loop_b.npz");
    check_io_error([&] { sg::save_npz(ps, dir / "loop_a.npz"); }, {"save_npz", "too many levels of symbolic links"});
    BOOST_TEST(fs::is_symlink(dir / "loop_a.npz"));
}

BOOST_AUTO_TEST_CASE(threads_saving_to_one_path_each_write_a_whole_file) {
    // Two threads of one process saving to the same path shared the temporary "<path>.tmp.<pid>":
    // one renamed it away while the other was still writing it, which then failed ("cannot rename
    // ... No such file or directory", 48 times in 50) or could have renamed a mixed file.
    temp_dir dir;
    sg::parameter_store a, b;
    a.add("w", pattern(sg::shape{200, 200}, 1.0));
    b.add("w", pattern(sg::shape{300, 100}, 2.0));
    b.add("v", pattern(sg::shape{7}, 3.0));
    const std::string path = dir / "m.npz";
    std::atomic<int> failures{0};
    const auto saver = [&](const sg::parameter_store& ps) {
        for (int i = 0; i < 20; ++i) {
            try {
                sg::save_npz(ps, path);
            } catch (const sg::io_error&) {
                ++failures;
            }
        }
    };
    std::thread ta(saver, std::cref(a)), tb(saver, std::cref(b));
    ta.join();
    tb.join();
    BOOST_TEST(failures.load() == 0);
    BOOST_TEST(dir.entries() == 1u);  // no temporary left behind
    const auto arrays = sg::read_npz(path);
    const sg::parameter_store& last = arrays.size() == 1u ? a : b;
    BOOST_TEST_REQUIRE(arrays.size() == last.size());
    for (const auto& p : last.parameters()) BOOST_TEST((arrays.at(p.name()) == p.value_as_double()), p.name());
}

BOOST_AUTO_TEST_CASE(numpy_reads_what_seqgrad_writes) {
    if (!have_numpy()) {
        BOOST_TEST_MESSAGE("numpy is absent (/usr/bin/python3 -c 'import numpy' failed): interop test skipped");
        return;
    }
    temp_dir dir;
    sg::parameter_store ps(sg::dtype::f32);
    build(ps);
    sg::save_npz(ps, dir / "m.npz");
    std::map<std::string, xt::xarray<double>> d = {{"x", pattern(sg::shape{2, 2}, 3.0)}};
    sg::write_npz(dir / "d.npz", d, sg::dtype::f64);
    // numpy checks names, dtypes and shapes, then writes back 2 * x + 1 in the same dtype.
    BOOST_TEST_REQUIRE(python(dir, R"(
m = np.load(d + '/m.npz')
assert sorted(m.files) == ['decoder.t', 'encoder.lstm0.b', 'encoder.w', 'scale'], m.files
assert m['encoder.w'].dtype == np.float32 and m['encoder.w'].shape == (3, 4)
assert m['scale'].shape == () and m['decoder.t'].shape == (2, 3, 4) and m['encoder.lstm0.b'].shape == (5,)
x = np.load(d + '/d.npz')['x']
assert x.dtype == np.float64 and x.shape == (2, 2)
np.savez(d + '/back.npz', **{k: m[k] * np.float32(2) + np.float32(1) for k in m.files}, x=x * 2 + 1)
)"));
    auto back = sg::read_npz(dir / "back.npz");
    BOOST_TEST(back.size() == 5u);
    for (auto& p : ps.parameters()) {
        const auto& v = p.value<float>();
        xt::xarray<double> expected = xt::cast<double>(xt::xarray<float>(v * 2.0f + 1.0f));
        BOOST_TEST((back.at(p.name()) == expected), p.name());
    }
    BOOST_TEST((back.at("x") == d["x"] * 2.0 + 1.0));
}

BOOST_AUTO_TEST_CASE(seqgrad_reads_what_numpy_writes) {
    if (!have_numpy()) {
        BOOST_TEST_MESSAGE("numpy is absent (/usr/bin/python3 -c 'import numpy' failed): interop test skipped");
        return;
    }
    temp_dir dir;
    // savez to a file (zip64 extra fields in local headers) and to an unseekable stream (data
    // descriptors, flag bit 3); plus the kinds of file that must be refused.
    BOOST_TEST_REQUIRE(python(dir, R"(
a = {'enc.w': np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(3),
     'enc.b': np.array([0.1, -2.5, 1e-300, 7.0]), 's': np.array(-1.25), 't': np.arange(24.0).reshape(2, 3, 4)}
np.savez(d + '/np.npz', **a)
class Unseekable:
    def __init__(self, f): self.f = f
    def write(self, b): return self.f.write(b)
    def flush(self): self.f.flush()
    def read(self, n=-1): raise OSError('write only')  # numpy takes objects with read() as files
with open(d + '/stream.npz', 'wb') as f:
    np.savez(Unseekable(f), **a)
np.savez_compressed(d + '/compressed.npz', w=np.ones(3))
np.savez(d + '/big_endian.npz', w=np.ones(3, dtype='>f4'))
np.savez(d + '/int.npz', w=np.arange(3))
np.savez(d + '/fortran.npz', w=np.asfortranarray(np.ones((2, 3))))
np.savez(d + '/rank5.npz', w=np.ones((1, 1, 1, 2, 1)))
np.savez(d + '/structured.npz', w=np.ones(3), rec=np.zeros(2, dtype=[('x', '<f4'), ('y', '<i4')]))
)"));
    for (const char* file : {"np.npz", "stream.npz"}) {
        BOOST_TEST_CONTEXT(file) {
            auto a = sg::read_npz(dir / file);
            BOOST_TEST(a.size() == 4u);
            BOOST_TEST(sg::parameter::shape_of(a.at("enc.w")).str() == "[2, 3]");
            for (std::size_t i = 0; i < 6; ++i)
                BOOST_TEST(a.at("enc.w").data()[i] == static_cast<double>(static_cast<float>(i) / 3.0f));
            BOOST_TEST((a.at("enc.b") == xt::xarray<double>{0.1, -2.5, 1e-300, 7.0}));
            BOOST_TEST(a.at("s").dimension() == 0u);
            BOOST_TEST(a.at("s")() == -1.25);
            BOOST_TEST(a.at("t")(1, 2, 3) == 23.0);

            sg::parameter_store ps(sg::dtype::f64);
            ps.add("enc.w", sg::shape{2, 3});
            ps.add("enc.b", sg::shape{4});
            ps.add("s", sg::shape{});
            ps.add("t", sg::shape{2, 3, 4});
            sg::load_npz(ps, dir / file);
            BOOST_TEST(ps.get("s").value<double>()() == -1.25);
            BOOST_TEST((ps.get("enc.w").value<double>() == a.at("enc.w")));
        }
    }
    const std::string np_bytes = slurp(dir / "np.npz"), stream_bytes = slurp(dir / "stream.npz");
    BOOST_TEST_MESSAGE("numpy.savez local header extra field: " << le(np_bytes, 28, 2) << " bytes");
    BOOST_TEST((le(stream_bytes, 6, 2) & 8) != 0u);  // the data descriptor path was exercised
    check_io_error([&] { sg::read_npz(dir / "compressed.npz"); },
                   {"'w.npy'", "compressed npz members are not supported; use numpy.savez"});
    check_io_error([&] { sg::read_npz(dir / "big_endian.npz"); }, {"'w.npy'", "dtype '>f4'"});
    BOOST_TEST((sg::read_npz(dir / "int.npz").at("w") == xt::xarray<double>{0.0, 1.0, 2.0}));  // integers read
    sg::parameter_store int_target;
    int_target.add("w", sg::shape{3});
    check_io_error([&] { sg::load_npz(int_target, dir / "int.npz"); }, {"'w.npy'", "for parameter 'w'"});
    check_io_error([&] { sg::read_npz(dir / "fortran.npz"); }, {"'w.npy'", "fortran_order True"});
    check_io_error([&] { sg::read_npz(dir / "rank5.npz"); }, {"'w.npy'", "rank 5"});
    check_io_error([&] { sg::read_npz(dir / "structured.npz"); },
                   {"'rec.npy'", "dtype '[('x', '<f4'), ('y', '<i4')]'"});
    BOOST_TEST((sg::read_npz(dir / "structured.npz", true).at("w") == xt::xarray<double>{1.0, 1.0, 1.0}));
}

BOOST_AUTO_TEST_SUITE_END()
