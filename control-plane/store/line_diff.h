// Line diff of two configuration texts, for `fulcrum compare`.
#pragma once

#include <string>
#include <string_view>

namespace fulcrum {

// The lines of `before` that are not in `after` prefixed "- ", and the lines
// of `after` that are not in `before` prefixed "+ ", each ending in '\n'; the
// lines both keep (a longest common subsequence) are not printed. Removals
// keep `before`'s order and additions `after`'s; between two kept lines, the
// removals come first, so a changed line reads as "- old" then "+ new".
// Empty when the texts have the same lines. Lines end at '\n'; a last line
// without one counts as a line.
//
// Cost: O((n + r) log n) time and O(n + r) memory for n lines and r pairs of
// equal lines in the part that differs (after the common head and tail are
// cut off). Canonical configuration texts have distinct lines, so r <= n;
// when r is unreasonably large (texts made of repeated lines), the middle is
// printed as all removed then all added instead of a minimal diff.
std::string diffLines(std::string_view before, std::string_view after);

}  // namespace fulcrum
