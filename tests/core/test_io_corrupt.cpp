// Damaged and unusual checkpoint files: compressed members, truncation at every offset, flipped
// bytes, random corruption and zip64 archives are rejected with io_error (or read correctly), never a crash.
#include "io_helpers.hpp"

BOOST_AUTO_TEST_SUITE(io_corrupt)

BOOST_AUTO_TEST_CASE(compressed_members_are_rejected) {
    temp_dir dir;
    sg::parameter_store ps;
    build(ps);
    sg::save_npz(ps, dir / "m.npz");
    std::string bytes = slurp(dir / "m.npz");
    for (std::size_t pos = 0; (pos = bytes.find("PK\x03\x04", pos)) != std::string::npos; pos += 4) bytes[pos + 8] = 8;
    for (std::size_t pos = 0; (pos = bytes.find("PK\x01\x02", pos)) != std::string::npos; pos += 4) bytes[pos + 10] = 8;
    spit(dir / "c.npz", bytes);
    check_io_error([&] { sg::load_npz(ps, dir / "c.npz"); },
                   {"'encoder.w.npy'", "compressed npz members are not supported; use numpy.savez"});
}

BOOST_AUTO_TEST_CASE(truncation_at_every_offset_is_detected) {
    temp_dir dir;
    sg::parameter_store ps, back;
    build(ps);
    build(back, false);
    sg::save_npz(ps, dir / "m.npz");
    const std::string bytes = slurp(dir / "m.npz");
    std::size_t undetected = 0, first = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        spit(dir / "t.npz", bytes.substr(0, n));
        bool threw = false;
        try {
            sg::load_npz(back, dir / "t.npz");
        } catch (const sg::io_error&) {
            threw = true;
        }
        try {
            sg::read_npz(dir / "t.npz");
            threw = false;
        } catch (const sg::io_error&) {}
        if (!threw && undetected++ == 0) first = n;
    }
    BOOST_TEST(undetected == 0u, "first undetected truncation at " << first << " of " << bytes.size());
    BOOST_TEST(snapshot(back) == std::vector<double>(snapshot(ps).size(), 0.0));
    check_io_error([&] { sg::read_npz(dir / "missing.npz"); }, {"missing.npz"});
    check_io_error([&] { sg::read_npz(dir.path.string()); }, {"not a regular file"});
}

BOOST_AUTO_TEST_CASE(flipped_bytes_are_detected_or_harmless) {
    temp_dir dir;
    sg::parameter_store ps, back;
    build(ps);
    build(back, false);
    sg::save_npz(ps, dir / "m.npz");
    const std::string bytes = slurp(dir / "m.npz");
    const auto spans = member_spans(bytes);
    BOOST_TEST_REQUIRE(spans.size() == 4u);
    const auto good = snapshot(ps), zeros = snapshot(back);
    std::size_t data_missed = 0, wrong_values = 0, detected = 0;
    for (std::size_t pos = 0; pos < bytes.size(); ++pos) {
        bool in_data = false;
        for (auto [b, e] : spans) in_data |= pos >= b && pos < e;
        for (unsigned mask : {0x01u, 0x80u, 0xFFu}) {
            std::string bad = bytes;
            bad[pos] = static_cast<char>(bad[pos] ^ mask);
            spit(dir / "f.npz", bad);
            try {
                sg::load_npz(back, dir / "f.npz");
                data_missed += in_data;
                wrong_values += snapshot(back) != good;  // an undetected flip must not change values
                for (auto& p : back.parameters()) p.assign(xt::zeros<double>(p.shape().to_vector()));
            } catch (const sg::io_error&) {
                ++detected;
                wrong_values += snapshot(back) != zeros;  // a failed load leaves the store alone
            }
        }
    }
    BOOST_TEST(data_missed == 0u);
    BOOST_TEST(wrong_values == 0u);
    BOOST_TEST(detected > bytes.size() * 2);  // only the time/date/version fields are free
    BOOST_TEST_MESSAGE(detected << " of " << 3 * bytes.size() << " flips detected");
}

BOOST_AUTO_TEST_CASE(random_corruption_never_crashes) {
    temp_dir dir;
    sg::parameter_store ps;
    build(ps);
    sg::save_npz(ps, dir / "m.npz");
    const std::string bytes = slurp(dir / "m.npz");
    std::mt19937 rng(12345);
    std::size_t other = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        std::string bad = bytes;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
        if (iter % 3 == 0) bad.resize(rng() % bad.size());
        if (iter % 5 == 0) bad += std::string(rng() % 40, static_cast<char>(rng()));
        spit(dir / "r.npz", bad);
        try {
            sg::read_npz(dir / "r.npz");
        } catch (const sg::io_error&) {
        } catch (...) {
            ++other;
        }
    }
    BOOST_TEST(other == 0u);
}

BOOST_AUTO_TEST_CASE(zip64_archives_are_read_and_checked) {
    temp_dir dir;
    const std::string path = dir / "z.npz";
    const std::string data = fields({{std::bit_cast<std::uint64_t>(1.5), 8}, {std::bit_cast<std::uint64_t>(-3.0), 8}});
    const std::string bytes = zip64_archive("w.npy",
                                            npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data));
    spit(path, bytes);
    const xt::xarray<double> expected{1.5, -3.0};
    BOOST_TEST((sg::read_npz(path).at("w") == expected));
    if (have_numpy())  // the hand-made archive is a valid one
        BOOST_TEST(python(dir,
                          "import zipfile\nassert zipfile.ZipFile(d + '/z.npz').testzip() is None\n"
                          "assert list(np.load(d + '/z.npz')['w']) == [1.5, -3.0]\n"));
    std::size_t bad = 0;
    for (std::size_t pos = 0; pos < 2 * bytes.size(); ++pos) {
        std::string c = bytes;  // every truncation, then every flip
        if (pos < bytes.size()) c.resize(pos);
        else c[pos - bytes.size()] = static_cast<char>(c[pos - bytes.size()] ^ 0x41);
        spit(path, c);
        try {
            bad += !(sg::read_npz(path).at("w") == expected) || pos < bytes.size();
        } catch (const sg::io_error&) {
        } catch (...) {
            ++bad;
        }
    }
    BOOST_TEST(bad == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
