#pragma once
// The benches' median: the middle figure, or the mean of the middle two for an even count (bench
// programs repeat rounds and windows an even number of times too; one such bench once took the
// upper of the two).
#include <algorithm>
#include <vector>

namespace seqgrad::bench {
inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
}  // namespace seqgrad::bench
