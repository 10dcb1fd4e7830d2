#pragma once
// Tiny, dependency-free plotting for the examples: SVG heat maps and line charts, and CSV files of
// the same numbers. Header-only; copy it next to your program.
//
//     namespace plot = seqgrad::plot;
//     plot::heatmap_svg("confusion.svg", m, true_labels, predicted_labels, "confusion matrix");
//     plot::write_csv("confusion.csv", m, true_labels, predicted_labels);
//     plot::line_chart_svg("loss.svg", {{"train", steps, train_loss}, {"valid", steps, valid_loss}},
//                          "loss", "step", "nats", /*log_y=*/true);
//
// Every file is written atomically, as the library's saves (core/io.hpp): the text goes to a
// temporary in the destination's directory, renamed over it (through a symbolic link, to the file
// it names); on failure the temporary is removed and seqgrad::io_error names the path. Labels may hold any text: it is XML-escaped and invalid UTF-8 becomes U+FFFD.
// NaN and infinite values never break a picture: a heat-map cell shows them hatched grey, a line
// chart leaves a gap (as it does for y <= 0 on a log scale), and CSV files write nan / inf.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <seqgrad/core/errors.hpp>
#include <seqgrad/core/io.hpp>

namespace seqgrad::plot {

/// One line of a line chart: points (x[i], y[i]); x and y must have the same length.
struct series {
    std::string name;
    std::vector<double> x, y;
};

enum class colour_ramp { viridis, grey };

/// Options of heatmap_svg (all have defaults).
struct heatmap_options {
    colour_ramp ramp = colour_ramp::viridis;
    double vmin = NAN, vmax = NAN;  ///< colour range; NaN: the smallest / largest finite value
    int annotate = -1;              ///< write each cell's value in it: 1 yes, 0 no, -1 when cells are large enough
    int value_decimals = 2;         ///< digits after the point in annotations and the colour bar
    bool annotate_zeros = true;     ///< false: leave cells that are exactly 0 blank (sparse matrices read better)
};

namespace detail {

inline std::string number(double v, int decimals) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    const double a = std::fabs(v);
    if (a != 0 && (a >= 1e6 || a < 1e-4)) std::snprintf(buf, sizeof buf, "%.*g", std::max(decimals, 1) + 1, v);
    else std::snprintf(buf, sizeof buf, "%.*f", std::max(decimals, 0), v);
    std::string s = buf;
    if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // "-0.00" -> "0.00"
    return s;
}

/// Shortest text that reads back as the same double (for CSV).
inline std::string exact(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// Valid UTF-8 with XML 1.0's illegal control characters dropped and & < > " ' escaped.
inline std::string xml(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default:
                if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += static_cast<char>(c);
            }
            ++i;
            continue;
        }
        // Multi-byte sequence: lead byte, length, and the range of the first continuation byte
        // (which excludes overlong forms, surrogates and values above U+10FFFF).
        std::size_t n = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) n = 2;
        else if (c >= 0xE0 && c <= 0xEF) n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        std::size_t k = 1;
        while (n && k < n && i + k < s.size()) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) break;
            ++k;
        }
        if (n && k == n) out.append(s.substr(i, n));
        else out += "\xEF\xBF\xBD";  // U+FFFD for the maximal ill-formed subsequence
        i += n && k == n ? n : std::max<std::size_t>(k, 1);
    }
    return out;
}

inline std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\n\r") == std::string_view::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')))
        return std::string(s);
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

/// Write text to path atomically, as the library's saves (core/io.hpp detail::atomic_write: a
/// temporary in the destination's directory renamed over it, a symbolic link written through).
inline void write_file_atomic(const std::string& path, const std::string& text) {
    seqgrad::detail::atomic_write(path, "plot",
                                  [&](std::ostream& os) { os.write(text.data(), std::streamsize(text.size())); });
}

/// A colour for t in [0, 1] as "#rrggbb".
inline std::string ramp_colour(colour_ramp ramp, double t) {
    t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
    double r, g, b;
    if (ramp == colour_ramp::grey) {
        r = g = b = 1.0 - 0.92 * t;  // white (low) to near black (high)
    } else {
        // Nine samples of matplotlib's viridis, linearly interpolated.
        static constexpr double v[9][3] = {{0.267, 0.005, 0.329}, {0.279, 0.175, 0.483}, {0.230, 0.322, 0.546},
                                           {0.173, 0.449, 0.558}, {0.128, 0.567, 0.551}, {0.154, 0.681, 0.504},
                                           {0.369, 0.789, 0.383}, {0.678, 0.864, 0.190}, {0.993, 0.906, 0.144}};
        const double p = t * 8;
        const int k = std::min(7, static_cast<int>(p));
        const double f = p - k;
        r = v[k][0] + f * (v[k + 1][0] - v[k][0]);
        g = v[k][1] + f * (v[k + 1][1] - v[k][1]);
        b = v[k][2] + f * (v[k + 1][2] - v[k][2]);
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(r * 255)),
                  static_cast<int>(std::lround(g * 255)), static_cast<int>(std::lround(b * 255)));
    return buf;
}
/// Perceived brightness of the ramp at t (to pick black or white text on it).
inline bool ramp_is_dark(colour_ramp ramp, double t) { return ramp == colour_ramp::grey ? t > 0.5 : t < 0.6; }

/// Approximate rendered width of a label in pixels (code points times an average glyph width).
inline double text_width(std::string_view s, double font_px) {
    std::size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return static_cast<double>(n) * font_px * 0.6;
}

/// "Nice" tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi].
inline std::vector<double> nice_ticks(double lo, double hi, int target, double* step_out) {
    const double span = hi - lo;
    const double raw = span / std::max(target, 1);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * mag * 1.0000001) {
            step = m * mag;
            break;
        }
    // Tick k is (first + k) step, at most target + 2 of them: adding step again and again never
    // advanced where step is below the spacing of doubles at lo (y values 1e20 and the next
    // double), and the loop ran until memory ran out. Ticks that round to the same double are one.
    std::vector<double> t;
    const double first = std::ceil(lo / step - 1e-9);
    for (int k = 0; k <= std::max(target, 1) + 2; ++k) {
        const double v = (first + k) * step;
        if (!(v <= hi + step * 1e-9)) break;
        if (t.empty() || v > t.back()) t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    }
    if (step_out) *step_out = step;
    return t;
}
inline int decimals_for(double step) { return std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9))); }

inline const char* palette(std::size_t i) {
    static constexpr const char* p[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return p[i % 10];
}

inline std::string svg_open(double w, double h) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                  "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, "
                  "sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                  w, h, w, h);
    return buf;
}

inline std::string fmt(const char* f, double a = 0, double b = 0, double c = 0, double d = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, f, a, b, c, d);
    return buf;
}

}  // namespace detail

/// A heat map of values[r][c] (rows top to bottom, columns left to right) with row labels on the
/// left, column labels on top (slanted), a title and a colour bar. Rows may be ragged: missing
/// and non-finite cells are drawn hatched grey. Labels may be fewer than rows or columns (the
/// rest are numbered) or empty. Throws io_error naming the path if it cannot be written.
inline void heatmap_svg(const std::string& path, const std::vector<std::vector<double>>& values,
                        const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                        const std::string& title, const heatmap_options& opt = {}) {
    using detail::fmt;
    const std::size_t rows = values.size();
    std::size_t cols = 0;
    for (const auto& r : values) cols = std::max(cols, r.size());
    auto row_label = [&](std::size_t r) { return r < row_labels.size() ? row_labels[r] : std::to_string(r); };
    auto col_label = [&](std::size_t c) { return c < col_labels.size() ? col_labels[c] : std::to_string(c); };

    double lo = opt.vmin, hi = opt.vmax;
    if (std::isnan(lo) || std::isnan(hi)) {
        double mn = INFINITY, mx = -INFINITY;
        for (const auto& r : values)
            for (double v : r)
                if (std::isfinite(v)) mn = std::min(mn, v), mx = std::max(mx, v);
        if (mn > mx) mn = 0, mx = 1;  // nothing finite
        if (std::isnan(lo)) lo = mn;
        if (std::isnan(hi)) hi = mx;
    }
    if (!(hi > lo)) hi = lo + 1;

    const double cell = std::clamp(720.0 / static_cast<double>(std::max<std::size_t>({rows, cols, 1})), 6.0, 44.0);
    const double font = std::clamp(cell * 0.45, 8.0, 13.0);
    double left = 20, top_labels = 10;
    for (std::size_t r = 0; r < rows; ++r) left = std::max(left, detail::text_width(row_label(r), font) + 12);
    for (std::size_t c = 0; c < cols; ++c)
        top_labels = std::max(top_labels, detail::text_width(col_label(c), font) * 0.72 + 12);
    left = std::min(left, 260.0);
    top_labels = std::min(top_labels, 200.0);
    const double top = 44 + top_labels;
    const double grid_w = cell * static_cast<double>(cols), grid_h = cell * static_cast<double>(rows);
    const double bar_x = left + grid_w + 24, bar_h = std::max(grid_h, 120.0);
    const double width = std::max(bar_x + 90, left + detail::text_width(title, 16) + 20);
    const double height = top + bar_h + 24;
    const bool annotate = opt.annotate == 1 || (opt.annotate == -1 && cell >= 26);

    std::string s = detail::svg_open(width, height);
    s +=
        "<defs><pattern id=\"nan\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
        "<rect width=\"6\" height=\"6\" fill=\"#dddddd\"/><path d=\"M0,6 L6,0\" stroke=\"#999999\"/></pattern></defs>\n";
    s += fmt("<text x=\"%.1f\" y=\"26\" font-size=\"16\" font-weight=\"bold\">", left) + detail::xml(title) +
         "</text>\n";
    for (std::size_t r = 0; r < rows; ++r) {
        const double y = top + cell * static_cast<double>(r);
        s += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"central\">",
                 left - 6, y + cell / 2, font) +
             detail::xml(row_label(r)) + "</text>\n";
        for (std::size_t c = 0; c < cols; ++c) {
            const double x = left + cell * static_cast<double>(c);
            const bool have = c < values[r].size() && std::isfinite(values[r][c]);
            const double t = have ? (values[r][c] - lo) / (hi - lo) : 0;
            s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"", x, y, cell, cell) +
                 (have ? detail::ramp_colour(opt.ramp, t) : std::string("url(#nan)")) + "\"><title>" +
                 detail::xml(row_label(r) + " / " + col_label(c) + ": " +
                             (c < values[r].size() ? detail::exact(values[r][c]) : std::string("none"))) +
                 "</title></rect>\n";
            if (annotate && have && (opt.annotate_zeros || values[r][c] != 0))
                s += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" text-anchor=\"middle\" "
                         "dominant-baseline=\"central\" fill=\"",
                         x + cell / 2, y + cell / 2, std::min(font, cell * 0.3)) +
                     (detail::ramp_is_dark(opt.ramp, t) ? "white" : "black") + "\">" +
                     detail::number(values[r][c], opt.value_decimals) + "</text>\n";
        }
    }
    for (std::size_t c = 0; c < cols; ++c) {
        const double x = left + cell * (static_cast<double>(c) + 0.5);
        s += fmt("<text transform=\"translate(%.1f,%.1f) rotate(-45)\" font-size=\"%.1f\">", x, top - 5, font) +
             detail::xml(col_label(c)) + "</text>\n";
    }
    s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n", left,
             top, grid_w, grid_h);
    // Colour bar: 32 bands from hi (top) to lo (bottom).
    for (int k = 0; k < 32; ++k)
        s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"", bar_x, top + bar_h * k / 32.0,
                 bar_h / 32.0 + 0.5) +
             detail::ramp_colour(opt.ramp, 1.0 - (k + 0.5) / 32.0) + "\"/>\n";
    s += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n", bar_x,
             top, bar_h);
    for (int k = 0; k <= 4; ++k) {
        const double v = hi - (hi - lo) * k / 4.0, y = top + bar_h * k / 4.0;
        s += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444444\"/>", bar_x + 14, y,
                 bar_x + 18, y) +
             fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" dominant-baseline=\"central\">", bar_x + 21, y) +
             detail::number(v, opt.value_decimals) + "</text>\n";
    }
    s += "</svg>\n";
    detail::write_file_atomic(path, s);
}

/// A line chart of one or more series with axes, ticks, grid lines, axis labels and a legend.
/// Non-finite points leave a gap in their line; with log_y, so do points with y <= 0 (and the
/// axis spans the positive values only). A series of at most 40 points also gets markers.
/// Throws value_error if a series' x and y differ in length, io_error if path cannot be written.
inline void line_chart_svg(const std::string& path, const std::vector<series>& s, const std::string& title,
                           const std::string& x_label, const std::string& y_label, bool log_y = false) {
    using detail::fmt;
    for (const auto& ser : s)
        if (ser.x.size() != ser.y.size())
            throw value_error("plot::line_chart_svg: series '" + ser.name + "' has " + std::to_string(ser.x.size()) +
                              " x values and " + std::to_string(ser.y.size()) + " y values");
    auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); };
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& ser : s)
        for (std::size_t i = 0; i < ser.x.size(); ++i)
            if (usable(ser.x[i], ser.y[i])) {
                x0 = std::min(x0, ser.x[i]), x1 = std::max(x1, ser.x[i]);
                const double y = log_y ? std::log10(ser.y[i]) : ser.y[i];
                y0 = std::min(y0, y), y1 = std::max(y1, y);
            }
    const bool empty = x0 > x1;
    if (empty) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (!(x1 > x0)) x0 -= 0.5, x1 += 0.5;
    if (!(y1 > y0)) {
        const double pad = log_y ? 0.5 : std::max(std::fabs(y0) * 0.1, 0.5);
        y0 -= pad, y1 += pad;
    }

    // Ticks; the y range is widened to whole ticks so the data never touches the frame.
    double xstep = 1, ystep = 1;
    std::vector<double> xt = detail::nice_ticks(x0, x1, 8, &xstep), yt;
    std::vector<std::string> ylab;
    if (log_y) {
        // Pad the range by 4% (in decades), then tick 1, 2 and 5 times powers of ten inside it
        // (only powers of ten, and only every few decades, when it spans many).
        const double pad = 0.04 * (y1 - y0);
        y0 -= pad, y1 += pad;
        const int decades = static_cast<int>(std::ceil(y1) - std::floor(y0));
        const int every = std::max(1, (decades + 7) / 8);
        std::vector<double> mult = decades <= 3 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
        auto add_ticks = [&] {
            yt.clear(), ylab.clear();
            for (int e = static_cast<int>(std::floor(y0)); e <= static_cast<int>(std::ceil(y1)); ++e) {
                if ((e % every + every) % every != 0) continue;
                for (double m : mult) {
                    const double v = e + std::log10(m);
                    if (v < y0 - 1e-9 || v > y1 + 1e-9) continue;
                    yt.push_back(v);
                    ylab.push_back(e >= -4 && e <= 5 ? detail::number(m * std::pow(10.0, e), std::max(0, -e))
                                                     : detail::number(m, 0) + "e" + std::to_string(e));
                }
            }
        };
        add_ticks();
        if (yt.size() < 3) {
            mult = {1, 2, 3, 4, 5, 6, 7, 8, 9};
            add_ticks();
        }
        if (yt.size() < 2) {  // less than a tick interval of 1..9: linear ticks between the ends
            double step = 1;
            const auto lin = detail::nice_ticks(std::pow(10.0, y0), std::pow(10.0, y1), 4, &step);
            yt.clear(), ylab.clear();
            for (double v : lin)
                if (v > 0) yt.push_back(std::log10(v)), ylab.push_back(detail::number(v, detail::decimals_for(step)));
        }
    } else {
        double step = 1;
        yt = detail::nice_ticks(y0, y1, 6, &step);
        y0 = std::min(y0, std::floor(y0 / step + 1e-9) * step);
        y1 = std::max(y1, std::ceil(y1 / step - 1e-9) * step);
        yt = detail::nice_ticks(y0, y1, 6, &ystep);
        for (double v : yt) ylab.push_back(detail::number(v, detail::decimals_for(ystep)));
    }

    double legend_w = 0;
    for (const auto& ser : s) legend_w = std::max(legend_w, detail::text_width(ser.name, 12) + 40);
    legend_w = std::min(legend_w, 240.0);
    double ylab_w = 0;
    for (const auto& l : ylab) ylab_w = std::max(ylab_w, detail::text_width(l, 11));
    const double left = 34 + ylab_w, top = 40, pw = 600, ph = 340;
    const double width = std::max(left + pw + 20 + legend_w, left + detail::text_width(title, 16) + 20);
    const double height = top + ph + 56;
    auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
    auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

    std::string o = detail::svg_open(width, height);
    o += fmt("<text x=\"%.1f\" y=\"24\" font-size=\"16\" font-weight=\"bold\">", left) + detail::xml(title) +
         "</text>\n";
    for (std::size_t i = 0; i < yt.size(); ++i) {
        const double y = py(yt[i]);
        o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", left, y, left + pw, y) +
             fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" dominant-baseline=\"central\">",
                 left - 6, y) +
             detail::xml(ylab[i]) + "</text>\n";
    }
    for (double v : xt) {
        const double x = px(v);
        o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", x, top, x, top + ph) +
             fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">", x, top + ph + 16) +
             detail::number(v, detail::decimals_for(xstep)) + "</text>\n";
    }
    o += fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n", left,
             top, pw, ph);
    o += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">", left + pw / 2, top + ph + 40) +
         detail::xml(x_label) + "</text>\n";
    o += fmt("<text transform=\"translate(14,%.1f) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">",
             top + ph / 2) +
         detail::xml(y_label + (log_y ? " (log scale)" : "")) + "</text>\n";
    if (empty)
        o +=
            fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" fill=\"#888888\" text-anchor=\"middle\">no data</text>\n",
                left + pw / 2, top + ph / 2);

    o += fmt("<clipPath id=\"plot\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n", left,
             top, pw, ph);
    for (std::size_t k = 0; k < s.size(); ++k) {
        const auto& ser = s[k];
        std::string d, marks;
        bool pen = false;
        for (std::size_t i = 0; i < ser.x.size(); ++i) {
            if (!usable(ser.x[i], ser.y[i])) {
                pen = false;
                continue;
            }
            const double x = px(ser.x[i]), y = py(log_y ? std::log10(ser.y[i]) : ser.y[i]);
            d += fmt(pen ? "L%.2f,%.2f " : "M%.2f,%.2f ", x, y);
            pen = true;
            if (ser.x.size() <= 40) marks += fmt("<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\"/>", x, y);
        }
        o += "<g clip-path=\"url(#plot)\" fill=\"" + std::string(detail::palette(k)) + "\" stroke=\"" +
             detail::palette(k) + "\"><title>" + detail::xml(ser.name) + "</title>";
        if (!d.empty()) o += "<path fill=\"none\" stroke-width=\"1.6\" stroke-linejoin=\"round\" d=\"" + d + "\"/>";
        o += marks + "</g>\n";
        const double ly = top + 10 + 18 * static_cast<double>(k);
        o += fmt("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke-width=\"2.5\" stroke=\"", left + pw + 14,
                 ly, left + pw + 38, ly) +
             detail::palette(k) + "\"/>" +
             fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" dominant-baseline=\"central\">", left + pw + 44, ly) +
             detail::xml(ser.name) + "</text>\n";
    }
    o += "</svg>\n";
    detail::write_file_atomic(path, o);
}

/// CSV with a header line and rows of numbers (shortest round-trip text; nan, inf, -inf).
inline void write_csv(const std::string& path, const std::vector<std::string>& header,
                      const std::vector<std::vector<double>>& rows) {
    std::string o;
    for (std::size_t i = 0; i < header.size(); ++i) o += (i ? "," : "") + detail::csv_field(header[i]);
    if (!header.empty()) o += "\n";
    for (const auto& r : rows) {
        for (std::size_t i = 0; i < r.size(); ++i) o += (i ? "," : "") + detail::exact(r[i]);
        o += "\n";
    }
    detail::write_file_atomic(path, o);
}

/// A labelled matrix, as heatmap_svg takes it: a header of column labels after `corner`, then
/// one line per row starting with its label.
inline void write_csv(const std::string& path, const std::vector<std::vector<double>>& values,
                      const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                      const std::string& corner = "") {
    std::string o = detail::csv_field(corner);
    for (const auto& c : col_labels) o += "," + detail::csv_field(c);
    o += "\n";
    for (std::size_t r = 0; r < values.size(); ++r) {
        o += detail::csv_field(r < row_labels.size() ? row_labels[r] : std::to_string(r));
        for (double v : values[r]) o += "," + detail::exact(v);
        o += "\n";
    }
    detail::write_file_atomic(path, o);
}

/// Series in long form, as line_chart_svg takes them: "series,x,y", one line per point.
inline void write_csv(const std::string& path, const std::vector<series>& s) {
    std::string o = "series,x,y\n";
    for (const auto& ser : s)
        for (std::size_t i = 0; i < std::min(ser.x.size(), ser.y.size()); ++i)
            o += detail::csv_field(ser.name) + "," + detail::exact(ser.x[i]) + "," + detail::exact(ser.y[i]) + "\n";
    detail::write_file_atomic(path, o);
}

}  // namespace seqgrad::plot
