#pragma once
// Checkpoints as NumPy .npz files: an uncompressed zip archive holding one .npy file per array.
//
//     seqgrad::save_npz(ps, "model.npz");            // numpy.load("model.npz")["encoder.w"]
//     seqgrad::load_npz(ps, "model.npz");            // every name and shape must match
//
// Files written here are stored (method 0) zips with a CRC-32 per member; each member is a .npy
// file, format version 1.0, little-endian '<f4' or '<f8', C order, named after the array's key
// plus ".npy". Files written by numpy.savez (including its zip64 extra fields and data
// descriptors) are read too; numpy.savez_compressed files are not (no zlib dependency).
//
// Reading checks everything before anything is used: every offset and size against the file
// size, signatures, the CRC-32 of every member, the .npy magic and header dict (descr,
// fortran_order and shape, nothing else), and that the data size is prod(shape) * itemsize. A
// corrupt or truncated file raises io_error naming the file, the member and what is wrong; it
// never crashes or reads out of bounds.
//
// Saving is atomic: the archive goes to "<path>.seqgrad-tmp.<pid>.<n>" in the same directory, is
// flushed, synced and closed, given the permission bits of the file it replaces (if any), and is
// then renamed over <path>. On any failure the temporary is removed, io_error is thrown, and an
// existing file at <path> is left as it was. A writer killed mid-save leaves its temporary
// behind; the next save to the same path removes the temporaries of processes that no longer
// exist. A symbolic link at <path> is written through, as numpy.save and torch.save do: <path>
// stands for the end of its chain of links (the temporary goes in that file's directory), the
// link stays a link and the file it names gets the new content. A dangling link's target is
// created, as open(2) would create it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "parameter.hpp"

namespace seqgrad {

/// Options of load_npz.
struct load_options {
    /// When true, every parameter of the store must be in the file and every member of the file
    /// must be a parameter of the store. When false, parameters absent from the file keep their
    /// values and members that name no parameter are ignored, whatever their dtype (metadata:
    /// strings, step counters; they are still checked for corruption). Shapes must match, and a
    /// member that names a parameter must be '<f4' or '<f8', in both modes. A non-strict load that
    /// would load nothing from a non-empty file (no member names a parameter) throws io_error.
    bool strict = true;
};

/// Save every parameter's value (not its gradient) to an .npz file at `path`, keyed by the
/// parameter's full name, in the store's scalar type ('<f4' for f32, '<f8' for f64). Atomic
/// (see above). Throws io_error if the file cannot be written, or if a member or the archive
/// would exceed 4 GiB or 65535 members (zip64 is read, not written).
void save_npz(const parameter_store& ps, const std::string& path);

/// Load parameter values from an .npz file written by save_npz, write_npz or numpy.savez.
/// Members are matched to parameters by name ("encoder.w" <- member "encoder.w.npy"); shapes
/// must be equal; '<f4' and '<f8' data are converted to the store's scalar type. Any other dtype
/// ('>f4', '<i8', ...), fortran_order True or a rank above 4 in a member that is loaded (or, in
/// strict mode, in any member), a name or shape mismatch (see load_options::strict) or a corrupt
/// file throws io_error. Loaded parameters are marked modified (parameter::mark_modified). All checks happen before any
/// parameter is modified: after a failed load the store is exactly as it was. Gradients are
/// not touched.
void load_npz(parameter_store& ps, const std::string& path, load_options opts = {});

/// Read every member of an .npz file into double arrays, keyed by member name without ".npy".
/// Accepts '<f4' and '<f8' members, and little-endian integers ('<i1' .. '<i8', '<u1' .. '<u8')
/// and bools ('|b1', as 0/1) of magnitude at most 2^53 (exact as doubles), of rank 0 to 4 in C
/// order. Any other member (strings, objects, structured dtypes, big-endian, fortran order, an
/// integer beyond 2^53) throws io_error, or is left out when skip_unsupported; corruption always
/// throws (see above).
std::map<std::string, xt::xarray<double>> read_npz(const std::string& path, bool skip_unsupported = false);

/// Write arrays to an .npz file at `path` (atomically), each as '<f4' (dt == f32, values rounded
/// to float; a finite value beyond float's range throws io_error) or '<f8'. Keys must be
/// non-empty; ranks above 4 throw io_error.
void write_npz(const std::string& path, const std::map<std::string, xt::xarray<double>>& arrays, dtype dt = dtype::f64);

namespace detail {
/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) as used by zip; pass the previous
/// result as `crc` to continue over several buffers. crc32("123456789", 9) == 0xCBF43926.
std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0);

/// An .npz file's '<f4'/'<f8' members as double arrays, and the others (key -> why they are not
/// read), for loaders that map member names themselves (nn::load_torch_state).
struct npz_contents {
    std::map<std::string, xt::xarray<double>> floats;
    std::map<std::string, std::string> other;
};
npz_contents read_npz_members(const std::string& path, const char* who);

/// One array for write_arrays: member `key` + ".npy" of shape `dims`, holding prod(dims) values
/// read from `data`, floats stored as '<f4' when dt is f32, doubles as '<f8' when it is f64.
struct npy_array {
    std::string key;
    std::vector<std::size_t> dims;
    dtype dt = dtype::f64;
    const void* data = nullptr;
};
/// Atomically write an .npz of `count` arrays, asking `array(i)` for each in turn so that one
/// encoded member at a time is in memory; `who` names the caller in io_error messages. What
/// save_npz and optimizer::save_state use: each array keeps its own scalar type.
void write_arrays(const std::string& path, const char* who, std::size_t count,
                  const std::function<npy_array(std::size_t)>& array);

/// Write a file atomically: `body` writes it to a temporary in the destination's directory, which
/// is synced and renamed over the destination; on failure io_error names `who` and `path`. A
/// symbolic link at `path` is written through, as open(2) would: the file it names is replaced,
/// and a dangling link's target is created. Every save (npz, vocabulary) goes through here.
void atomic_write(const std::string& path, const char* who, const std::function<void(std::ostream&)>& body);

/// Atomically write a stored zip whose members are the given (name, raw bytes) pairs, in order.
/// What write_npz uses underneath; exposed so tests can build hand-made members.
void write_zip(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members);
}  // namespace detail

}  // namespace seqgrad
