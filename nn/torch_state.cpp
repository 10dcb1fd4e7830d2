#include "torch_state.hpp"

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "../core/errors.hpp"

namespace seqgrad::nn {
namespace {

const char* kind_name(torch_module k) {
    switch (k) {
    case torch_module::rnn_cell: return "rnn_cell";
    case torch_module::rnn_stacked: return "rnn_stacked";
    case torch_module::rnn_bidirectional: return "rnn_bidirectional";
    case torch_module::linear: return "linear";
    case torch_module::embedding: return "embedding";
    }
    return "?";
}

// w_ih -> weight_ih, ...; empty when not a recurrent parameter.
std::string rnn_param(std::string_view p) {
    if (p == "w_ih") return "weight_ih";
    if (p == "w_hh") return "weight_hh";
    if (p == "b_ih") return "bias_ih";
    if (p == "b_hh") return "bias_hh";
    return {};
}

// "l12.rest" -> (12, "rest"); false if not of that form.
bool layer_prefix(std::string_view s, std::size_t& layer, std::string_view& rest) {
    if (s.size() < 3 || s[0] != 'l') return false;
    std::size_t i = 1, k = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9' && i < 6; ++i) k = k * 10 + static_cast<std::size_t>(s[i] - '0');
    if (i == 1 || i >= s.size() || s[i] != '.') return false;
    layer = k;
    rest = s.substr(i + 1);
    return true;
}

// The torch suffix of seqgrad suffix `s` (the name after "<scope>.") for this kind; empty if none.
std::string torch_suffix(torch_module kind, std::string_view s) {
    switch (kind) {
    case torch_module::linear: return s == "weight" || s == "bias" ? std::string(s) : std::string();
    case torch_module::embedding: return s == "weight" ? std::string(s) : std::string();
    case torch_module::rnn_cell: {
        const std::string p = rnn_param(s);
        return p.empty() ? p : p + "_l0";
    }
    case torch_module::rnn_stacked:
    case torch_module::rnn_bidirectional: {
        std::size_t layer = 0;
        std::string_view rest;
        if (!layer_prefix(s, layer, rest)) return {};
        std::string reverse;
        if (kind == torch_module::rnn_bidirectional) {
            if (rest.substr(0, 4) == "bwd.") reverse = "_reverse";
            else if (rest.substr(0, 4) != "fwd.") return {};
            rest = rest.substr(4);
        }
        const std::string p = rnn_param(rest);
        return p.empty() ? p : p + "_l" + std::to_string(layer) + reverse;
    }
    }
    return {};
}

const char* expected_names(torch_module kind) {
    switch (kind) {
    case torch_module::rnn_cell: return "w_ih, w_hh, b_ih, b_hh";
    case torch_module::rnn_stacked: return "l<k>.w_ih, l<k>.w_hh, l<k>.b_ih, l<k>.b_hh";
    case torch_module::rnn_bidirectional: return "l<k>.fwd.{w_ih, w_hh, b_ih, b_hh}, l<k>.bwd.{...}";
    case torch_module::linear: return "weight, bias";
    case torch_module::embedding: return "weight";
    }
    return "";
}

bool is_rnn(torch_module k) {
    return k == torch_module::rnn_cell || k == torch_module::rnn_stacked || k == torch_module::rnn_bidirectional;
}

// A member of an rnn mapping's module that only nn.LSTM(proj_size > 0) has (weight_hr_l<k>, the
// projection of h): io_error, before the shape checks, whose message would name only the
// narrower weight_hh.
void refuse_projection(const std::string& who, const std::string& key, std::span<const torch_mapping> mapping) {
    for (const torch_mapping& m : mapping) {
        const std::string tprefix = m.torch_prefix.empty() ? std::string() : m.torch_prefix + ".";
        if (is_rnn(m.kind) && key.compare(0, tprefix.size(), tprefix) == 0 &&
            key.compare(tprefix.size(), 11, "weight_hr_l") == 0)
            throw io_error(who + "member '" + key + "' is the projection of an nn.LSTM with proj_size > 0, which " +
                           kind_name(m.kind) + " '" + m.scope +
                           "' does not support (seqgrad's lstm_cell has no projection; expected proj_size=0)");
    }
}

std::string list(const std::vector<std::string>& names) {
    std::string s;
    for (std::size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 8) s += ", ... (" + std::to_string(names.size()) + " in all)";
    return s;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> torch_names(const parameter_store& ps,
                                                             std::span<const torch_mapping> mapping) {
    std::vector<std::pair<std::string, std::string>> out;
    std::map<std::string, std::string> by_torch;  // torch name -> seqgrad name
    std::set<std::string> mapped;
    for (const torch_mapping& m : mapping) {
        const std::string prefix = m.scope.empty() ? std::string() : m.scope + ".";
        const std::string tprefix = m.torch_prefix.empty() ? std::string() : m.torch_prefix + ".";
        std::size_t count = 0;
        for (const parameter& p : ps.parameters()) {
            const std::string& name = p.name();
            if (name.compare(0, prefix.size(), prefix) != 0) continue;
            ++count;
            const std::string suffix = torch_suffix(m.kind, std::string_view(name).substr(prefix.size()));
            if (suffix.empty())
                throw value_error("nn::torch_names: parameter '" + name + "' under scope '" + m.scope +
                                  "' is not one of " + kind_name(m.kind) + "'s (expected " + prefix + "{" +
                                  expected_names(m.kind) + "})");
            if (!mapped.insert(name).second)
                throw value_error("nn::torch_names: parameter '" + name + "' is under two mappings");
            const std::string tname = tprefix + suffix;
            if (auto [it, fresh] = by_torch.emplace(tname, name); !fresh)
                throw value_error("nn::torch_names: parameters '" + it->second + "' and '" + name +
                                  "' both map to torch name '" + tname + "'");
            out.emplace_back(name, tname);
        }
        if (count == 0)
            throw value_error("nn::torch_names: mapping '" + m.torch_prefix + "' -> '" + m.scope + "' (" +
                              kind_name(m.kind) + "): the store has no parameter named '" + prefix + "*'");
    }
    return out;
}

torch_load_report load_torch_state(parameter_store& ps, const std::string& path, std::span<const torch_mapping> mapping,
                                   load_options opts) {
    const auto names = torch_names(ps, mapping);
    const auto file = seqgrad::detail::read_npz_members(path, "load_torch_state");
    const std::string who = "load_torch_state: '" + path + "': ";
    std::map<std::string, std::string> to_seqgrad;
    for (auto& [sg_name, t_name] : names) to_seqgrad.emplace(t_name, sg_name);

    for (const auto& member : file.floats) refuse_projection(who, member.first, mapping);

    torch_load_report r;
    std::vector<std::pair<parameter, const xt::xarray<double>*>> plan;
    for (auto& [key, why] : file.other) {
        auto it = to_seqgrad.find(key);
        if (it != to_seqgrad.end())
            throw io_error(who + "member '" + key + "' (for parameter '" + it->second + "'): " + why +
                           " (expected '<f4' or '<f8')");
        r.ignored.push_back(key);
    }
    for (auto& [key, value] : file.floats) {
        auto it = to_seqgrad.find(key);
        if (it == to_seqgrad.end()) {
            r.ignored.push_back(key);
            continue;
        }
        const parameter p = ps.get(it->second);
        if (parameter::shape_of(value) != p.shape())
            throw io_error(who + "member '" + key + "' has shape " + parameter::shape_of(value).str() +
                           ", parameter '" + p.name() + "' has " + p.shape().str() +
                           " (the torch module and the seqgrad model differ)");
        if (p.scalar_type() == dtype::f32)  // as load_npz: a finite double beyond float's range would load as inf
            if (const std::size_t i = detail::first_beyond_float(value.data(), value.size()); i < value.size()) {
                std::ostringstream msg;
                msg << who << "member '" << key << "': value " << value.data()[i] << " at index " << i
                    << " does not fit parameter '" << p.name() << "' of type f32";
                throw io_error(msg.str());
            }
        plan.emplace_back(p, &value);
    }
    std::set<std::string> loaded;
    for (auto& [p, v] : plan) loaded.insert(p.name());
    bool no_bias = false;  // an rnn bias missing where its layer's weights are in the file
    for (auto& [sg_name, t_name] : names) {
        if (loaded.count(sg_name)) continue;
        r.missing.push_back(sg_name + " (torch '" + t_name + "')");
        // Only rnn kinds name a parameter b_ih or b_hh (torch <P>bias_ih<tail>, tail _l<k>[_reverse]):
        // bias=False when both weights of that layer and direction are in the file.
        const std::string_view leaf = std::string_view(sg_name).substr(sg_name.size() < 4 ? 0 : sg_name.size() - 4);
        const auto at = t_name.rfind("bias_");
        if ((leaf == "b_ih" || leaf == "b_hh") && at != std::string::npos) {
            const std::string base = t_name.substr(0, at), tail = t_name.substr(at + 7);
            if (file.floats.count(base + "weight_ih" + tail) && file.floats.count(base + "weight_hh" + tail))
                no_bias = true;
        }
    }
    if (opts.strict && !r.missing.empty())
        throw io_error(who + "parameter(s) " + list(r.missing) + " missing from the file" +
                       (no_bias ? " (the weights of their layers are: a torch module built with bias=False, but "
                                  "seqgrad's cells always add b_ih and b_hh; set them to zero, nn::zeros, then load "
                                  "with load_options{.strict = false}, which keeps their values)"
                                : " (load_options{.strict = false} keeps their values)"));
    if (opts.strict && !r.ignored.empty())
        throw io_error(who + "member(s) " + list(r.ignored) +
                       " map to no parameter (check the torch prefixes; load_options{.strict = false} ignores them)");
    if (plan.empty() && !(file.floats.empty() && file.other.empty()))
        throw io_error(who + "none of the file's members (" + list(r.ignored) + ") maps to a parameter (" +
                       list(r.missing) + "); check the torch prefixes and kinds of the mapping");

    for (auto& [p, v] : plan) {
        p.assign(*v);
        r.loaded.push_back(p.name());
    }
    return r;
}

void save_torch_state(const parameter_store& ps, const std::string& path, std::span<const torch_mapping> mapping) {
    std::map<std::string, xt::xarray<double>> arrays;
    for (auto& [sg_name, t_name] : torch_names(ps, mapping)) arrays.emplace(t_name, ps.get(sg_name).value_as_double());
    write_npz(path, arrays, ps.scalar_type());
}

}  // namespace seqgrad::nn
