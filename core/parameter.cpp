#include "parameter.hpp"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <sstream>

namespace seqgrad {

void detail::require_float(const char* who, const double* v, std::size_t n) {
    if (const std::size_t k = first_beyond_float(v, n); k < n)
        throw value_error(std::string(who) + ": value " + number(v[k]) +
                          (n > 1 ? " at index " + std::to_string(k) : std::string()) +
                          " does not fit a float tape (expected |x| <= 3.4e38, or inf or nan)");
}

namespace {
std::atomic<std::uint64_t> next_uid{1};

std::vector<std::size_t> dims(const shape& s) { return s.to_vector(); }

template <class T>
void check_type(const detail::param_data& d, const char* what) {
    if (d.dt != dtype_of<T>())
        throw value_error("parameter '" + d.name + "': " + what + "<" + to_string(dtype_of<T>()) + "> asked of a " +
                          to_string(d.dt) + " parameter");
}

// A finite value beyond float's range would become inf (a conversion C++ leaves undefined): what
// writes doubles into float storage (assign, to(f32)) refuses it before anything is written.
// Infinities and NaN are kept as given.
void check_fits_float(const std::string& name, const char* what, const xt::xarray<double>& v) {
    const std::size_t i = detail::first_beyond_float(v.data(), v.size());
    if (i == v.size()) return;
    std::ostringstream msg;
    msg << "parameter '" << name << "': " << what << " of " << v.data()[i] << " (entry " << i
        << "), beyond the range of float (expected |x| <= " << FLT_MAX << ")";
    throw value_error(msg.str());
}
}  // namespace

template <class T>
xt::xarray<T>& parameter::value() const {
    auto& d = data();
    check_type<T>(d, "value");
    if constexpr (std::is_same_v<T, float>) return d.vf;
    else return d.vd;
}
template <class T>
xt::xarray<T>& parameter::grad() const {
    auto& d = data();
    check_type<T>(d, "grad");
    if constexpr (std::is_same_v<T, float>) return d.gf;
    else return d.gd;
}
template xt::xarray<float>& parameter::value<float>() const;
template xt::xarray<double>& parameter::value<double>() const;
template xt::xarray<float>& parameter::grad<float>() const;
template xt::xarray<double>& parameter::grad<double>() const;

xt::xarray<double> parameter::value_as_double() const {
    auto& d = data();
    if (d.dt == dtype::f64) return d.vd;
    return xt::cast<double>(d.vf);
}
xt::xarray<double> parameter::grad_as_double() const {
    auto& d = data();
    if (d.dt == dtype::f64) return d.gd;
    return xt::cast<double>(d.gf);
}

void parameter::assign(const xt::xarray<double>& v) const {
    auto& d = data();
    if (shape_of(v) != d.shp)
        throw shape_error("parameter '" + d.name + "': assign of shape " + shape_of(v).str() + ", expected " +
                          d.shp.str());
    if (d.dt == dtype::f32) check_fits_float(d.name, "assign", v);
    // In place: a live tape that read the parameter keeps a pointer into this storage.
    if (d.dt == dtype::f64) std::copy(v.begin(), v.end(), d.vd.begin());
    else std::transform(v.begin(), v.end(), d.vf.begin(), [](double x) { return static_cast<float>(x); });
    mark_modified();
}

seqgrad::shape parameter::shape_of(const xt::xarray<double>& v) { return seqgrad::shape(v.shape()); }

parameter parameter_store::add(std::string name, const seqgrad::shape& shp, weight_layout layout) {
    if (name.empty()) throw value_error("parameter_store::add: empty parameter name");
    if (contains(name)) throw value_error("parameter_store::add: a parameter named '" + name + "' already exists");
    auto p = std::make_unique<detail::param_data>();
    p->name = std::move(name);
    p->shp = shp;
    p->dt = dt_;
    p->uid = next_uid.fetch_add(1);
    p->layout = layout;
    if (dt_ == dtype::f32) {
        p->vf = xt::zeros<float>(dims(shp));
        p->gf = xt::zeros<float>(dims(shp));
    } else {
        p->vd = xt::zeros<double>(dims(shp));
        p->gd = xt::zeros<double>(dims(shp));
    }
    params_.push_back(std::move(p));
    return parameter(params_.back().get());
}

parameter parameter_store::add(std::string name, const xt::xarray<double>& init, weight_layout layout) {
    auto p = add(std::move(name), seqgrad::shape(init.shape()), layout);
    p.assign(init);
    return p;
}

bool parameter_store::contains(std::string_view name) const {
    for (auto& p : params_)
        if (p->name == name) return true;
    return false;
}

parameter parameter_store::get(std::string_view name) const {
    for (auto& p : params_)
        if (p->name == name) return parameter(p.get());
    std::string known;
    for (std::size_t i = 0; i < params_.size() && i < 8; ++i) known += (i ? ", " : "") + params_[i]->name;
    if (params_.size() > 8) known += ", ...";
    throw value_error("parameter_store::get: no parameter named '" + std::string(name) + "' (the store has " +
                      std::to_string(params_.size()) + ": " + known + ")");
}

std::vector<parameter> parameter_store::parameters() const {
    std::vector<parameter> out;
    out.reserve(params_.size());
    for (auto& p : params_) out.emplace_back(p.get());
    return out;
}

std::size_t parameter_store::num_elements() const {
    std::size_t n = 0;
    for (auto& p : params_) n += p->shp.size();
    return n;
}

void parameter_store::to(dtype dt) {
    // Every parameter is checked before any is converted: a refused to() leaves the store as it was.
    if (dt == dtype::f32)
        for (auto& p : params_)
            if (p->dt == dtype::f64) check_fits_float(p->name, "to(f32)", p->vd);
    for (auto& p : params_) {
        if (p->dt == dt) continue;
        if (dt == dtype::f64) {
            p->vd = xt::cast<double>(p->vf);
            p->gd = xt::zeros<double>(dims(p->shp));
            p->vf = xt::xarray<float>();
            p->gf = xt::xarray<float>();
        } else {
            p->vf = xt::cast<float>(p->vd);
            p->gf = xt::zeros<float>(dims(p->shp));
            p->vd = xt::xarray<double>();
            p->gd = xt::xarray<double>();
        }
        p->dt = dt;
        p->version.fetch_add(1, std::memory_order_relaxed);
    }
    dt_ = dt;
}

void parameter_store::zero_grad() {
    for (auto& p : params_) {
        if (p->dt == dtype::f32) std::fill(p->gf.begin(), p->gf.end(), 0.0f);
        else std::fill(p->gd.begin(), p->gd.end(), 0.0);
    }
}

double parameter_store::grad_squared_norm() const {
    double s = 0;
    for (auto& p : params_) {
        if (!p->trainable) continue;
        if (p->dt == dtype::f32)
            for (float g : p->gf) s += double(g) * g;
        else
            for (double g : p->gd) s += g * g;
    }
    return s;
}

}  // namespace seqgrad
