#pragma once
// PyTorch state_dicts by name: load a trained torch model's weights into the matching seqgrad
// model, and export the other way, in one call each.
//
// On the Python side a state_dict is saved with numpy.savez (and read back the same way):
//
//     np.savez("model.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
//     model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load("model.npz").items()})
//
// In C++, one mapping per torch module, from its state_dict prefix to the seqgrad scope that
// holds the same weights:
//
//     nn::load_torch_state(ps, "model.npz", {{"encoder", "enc", nn::torch_module::rnn_bidirectional},
//                                            {"decoder.out", "out", nn::torch_module::linear}});
//     nn::save_torch_state(ps, "back.npz", same_mapping);
//
// Names, per kind (P: the torch prefix, S: the seqgrad scope; p in w_ih, w_hh, b_ih, b_hh and
// torch's weight_ih, weight_hh, bias_ih, bias_hh respectively):
//   rnn_cell           nn.LSTM/GRU/RNN, 1 layer, one direction  S.p          <-> P.weight_ih_l0, ...
//   rnn_stacked        nn.LSTM/GRU/RNN, any layers, one direction (nn::make_stacked)
//                                                               S.l<k>.p     <-> P.weight_ih_l<k>, ...
//   rnn_bidirectional  nn.LSTM/GRU/RNN, any layers, bidirectional=True (as nn::seq2seq's encoder)
//                                                               S.l<k>.fwd.p <-> P.weight_ih_l<k>, ...
//                                                               S.l<k>.bwd.p <-> P.weight_ih_l<k>_reverse, ...
//   linear             nn.Linear                                S.weight, S.bias <-> P.weight, P.bias
//   embedding          nn.Embedding                             S.weight     <-> P.weight
// The layouts are PyTorch's already (gates i, f, g, o for the LSTM; r, z, n for the GRU; Linear
// weight [out, in]), so values are copied as they are. An empty prefix is the root module.
// Parameters of the store outside the mapped scopes are neither loaded nor saved. Not supported:
// nn.LSTM(proj_size > 0), whose weight_hr_l<k> is refused by name; a module built with bias=False
// has no biases to load (the cells always add b_ih and b_hh): zero them (nn::zeros) and load with
// load_options{.strict = false}, which the strict error suggests.
#include <span>
#include <string>
#include <vector>

#include "../core/io.hpp"
#include "../core/parameter.hpp"

namespace seqgrad::nn {

enum class torch_module { rnn_cell, rnn_stacked, rnn_bidirectional, linear, embedding };

/// One torch module mapped onto one seqgrad scope.
struct torch_mapping {
    std::string torch_prefix;  ///< state_dict key prefix without the trailing dot ("" for the root)
    std::string scope;         ///< seqgrad scope (parameter name prefix without the trailing dot)
    torch_module kind;
};

/// The torch name of every parameter under the mapped scopes, in store order: (seqgrad, torch).
/// Throws value_error for a mapping whose scope holds no parameter, for a parameter under a scope
/// that the kind does not name (e.g. "enc.l0.extra" for an rnn), or for two parameters with one
/// torch name.
std::vector<std::pair<std::string, std::string>> torch_names(const parameter_store& ps,
                                                             std::span<const torch_mapping> mapping);

/// What load_torch_state did, by name.
struct torch_load_report {
    std::vector<std::string> loaded;   ///< seqgrad names that got values
    std::vector<std::string> missing;  ///< mapped seqgrad parameters not in the file (kept)
    std::vector<std::string> ignored;  ///< file members that map to no parameter
};

/// Load a state_dict saved with numpy.savez into the mapped parameters. Every name and shape is
/// checked before any parameter changes; errors (io_error) name the torch member, the seqgrad
/// parameter and both shapes. Strict (the default): every mapped parameter must be in the file
/// and every member of the file must map to one. Non-strict: absent parameters keep their values
/// and unmapped members (also non-float ones, e.g. BatchNorm's num_batches_tracked) are ignored,
/// as the returned report lists; loading nothing from a non-empty file still throws io_error.
/// Loaded parameters are marked modified (see parameter::mark_modified).
torch_load_report load_torch_state(parameter_store& ps, const std::string& path, std::span<const torch_mapping> mapping,
                                   load_options opts = {});
inline torch_load_report load_torch_state(parameter_store& ps, const std::string& path,
                                          std::initializer_list<torch_mapping> mapping, load_options opts = {}) {
    return load_torch_state(ps, path, std::span<const torch_mapping>(mapping.begin(), mapping.size()), opts);
}

/// Save the mapped parameters under their torch names (atomically, in the store's scalar type),
/// ready for torch's load_state_dict(strict=True) on the matching modules.
void save_torch_state(const parameter_store& ps, const std::string& path, std::span<const torch_mapping> mapping);
inline void save_torch_state(const parameter_store& ps, const std::string& path,
                             std::initializer_list<torch_mapping> mapping) {
    save_torch_state(ps, path, std::span<const torch_mapping>(mapping.begin(), mapping.size()));
}

}  // namespace seqgrad::nn
