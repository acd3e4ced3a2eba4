#include "control-plane/store/line_diff.h"

#include <algorithm>
#include <cstddef>
#include <unordered_map>
#include <vector>

namespace fulcrum {
namespace {

// Above this many equal-line pairs the exact diff would cost more memory than
// a configuration diff is worth; see the header.
constexpr size_t kMaxMatchPairs = size_t{1} << 22;

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

struct Match {
  size_t a;
  size_t b;
};

// A longest common subsequence of a and b by Hunt-Szymanski: for each line
// of b, its equal lines in a, visited from the last so that one line of b
// extends a chain at most once; the chains are kept as a patience sort
// (tails[k] ends the best chain of length k + 1). With distinct lines this is
// a longest increasing subsequence, O(n log n), unlike the O(n * m) table.
// Returns false when there are more than kMaxMatchPairs pairs.
bool longestCommonSubsequence(const std::vector<std::string_view>& a,
                              const std::vector<std::string_view>& b, std::vector<Match>& out) {
  out.clear();
  std::unordered_map<std::string_view, std::vector<size_t>> where;
  for (size_t i = 0; i < a.size(); ++i) where[a[i]].push_back(i);

  size_t pairs = 0;
  for (std::string_view line : b) {
    const auto it = where.find(line);
    if (it != where.end()) pairs += it->second.size();
    if (pairs > kMaxMatchPairs) return false;
  }

  struct Node {
    Match match;
    size_t previous;  // index in nodes, or kNone
  };
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<Node> nodes;
  nodes.reserve(pairs);
  std::vector<size_t> tails;  // indices in nodes; their `a` strictly increase
  for (size_t j = 0; j < b.size(); ++j) {
    const auto it = where.find(b[j]);
    if (it == where.end()) continue;
    for (auto i = it->second.rbegin(); i != it->second.rend(); ++i) {
      const auto slot =
          std::lower_bound(tails.begin(), tails.end(), *i,
                           [&](size_t node, size_t ai) { return nodes[node].match.a < ai; });
      const size_t k = static_cast<size_t>(slot - tails.begin());
      nodes.push_back(Node{{*i, j}, k == 0 ? kNone : tails[k - 1]});
      if (k == tails.size()) {
        tails.push_back(nodes.size() - 1);
      } else {
        tails[k] = nodes.size() - 1;
      }
    }
  }
  for (size_t n = tails.empty() ? kNone : tails.back(); n != kNone; n = nodes[n].previous) {
    out.push_back(nodes[n].match);
  }
  std::reverse(out.begin(), out.end());
  return true;
}

void emit(std::string& out, char sign, std::string_view line) {
  out += sign;
  out += ' ';
  out += line;
  out += '\n';
}

}  // namespace

std::string diffLines(std::string_view before, std::string_view after) {
  const std::vector<std::string_view> beforeLines = splitLines(before);
  const std::vector<std::string_view> afterLines = splitLines(after);

  // A commit usually changes a few lines: cutting the common head and tail
  // first keeps the matching below to the part that changed.
  size_t head = 0;
  while (head < beforeLines.size() && head < afterLines.size() &&
         beforeLines[head] == afterLines[head])
    ++head;
  size_t tail = 0;
  while (tail < beforeLines.size() - head && tail < afterLines.size() - head &&
         beforeLines[beforeLines.size() - 1 - tail] == afterLines[afterLines.size() - 1 - tail]) {
    ++tail;
  }
  const std::vector<std::string_view> a(beforeLines.begin() + static_cast<ptrdiff_t>(head),
                                        beforeLines.end() - static_cast<ptrdiff_t>(tail));
  const std::vector<std::string_view> b(afterLines.begin() + static_cast<ptrdiff_t>(head),
                                        afterLines.end() - static_cast<ptrdiff_t>(tail));

  std::vector<Match> common;
  if (!longestCommonSubsequence(a, b, common)) common.clear();
  std::string out;
  size_t i = 0;
  size_t j = 0;
  for (const Match& m : common) {
    while (i < m.a) emit(out, '-', a[i++]);
    while (j < m.b) emit(out, '+', b[j++]);
    ++i;
    ++j;
  }
  while (i < a.size()) emit(out, '-', a[i++]);
  while (j < b.size()) emit(out, '+', b[j++]);
  return out;
}

}  // namespace fulcrum
