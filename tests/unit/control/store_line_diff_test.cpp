// Tests of the line diff behind `fulcrum compare`.
#include "control-plane/store/line_diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace fulcrum {
namespace {

TEST(LineDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(diffLines("", ""), "");
  EXPECT_EQ(diffLines("a\nb\n", "a\nb\n"), "");
}

TEST(LineDiff, AdditionsAndRemovals) {
  EXPECT_EQ(diffLines("", "a\nb\n"), "+ a\n+ b\n");
  EXPECT_EQ(diffLines("a\nb\n", ""), "- a\n- b\n");
  EXPECT_EQ(diffLines("a\nc\n", "a\nb\nc\n"), "+ b\n");
  EXPECT_EQ(diffLines("a\nb\nc\n", "a\nc\n"), "- b\n");
}

TEST(LineDiff, ChangedLineReadsRemovedThenAdded) {
  EXPECT_EQ(diffLines("a\nb\nc\n", "a\nB\nc\n"), "- b\n+ B\n");
  EXPECT_EQ(diffLines("a\nb1\nb2\nc\nd\n", "a\nB1\nc\nD\n"), "- b1\n- b2\n+ B1\n- d\n+ D\n");
}

TEST(LineDiff, KeepsALongestCommonSubsequence) {
  // A moved line is one removal and one addition, never more.
  EXPECT_EQ(diffLines("a\nb\nc\nd\n", "b\nc\nd\na\n"), "- a\n+ a\n");
  EXPECT_EQ(diffLines("x\na\nb\nc\n", "a\nb\nc\ny\n"), "- x\n+ y\n");
}

TEST(LineDiff, RepeatedLinesAndMissingFinalNewline) {
  EXPECT_EQ(diffLines("a\na\na\n", "a\na\n"), "- a\n");
  EXPECT_EQ(diffLines("a\nb", "a\nb\n"), "");  // the last line counts without '\n'
  EXPECT_EQ(diffLines("a\n\nb\n", "a\nb\n"), "- \n");
}

struct Op {
  char sign;
  std::string body;
};

std::vector<Op> ops(const std::string& diff) {
  std::vector<Op> out;
  size_t start = 0;
  while (start < diff.size()) {
    const size_t end = diff.find('\n', start);
    EXPECT_NE(end, std::string::npos) << diff;
    EXPECT_GE(end - start, 2u) << diff;
    EXPECT_EQ(diff[start + 1], ' ') << diff;
    out.push_back(Op{diff[start], diff.substr(start + 2, end - start - 2)});
    start = end + 1;
  }
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& s : lines) out += s + "\n";
  return out;
}

size_t lcsLength(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::vector<size_t>> t(a.size() + 1, std::vector<size_t>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;) {
    for (size_t j = b.size(); j-- > 0;) {
      t[i][j] = a[i] == b[j] ? t[i + 1][j + 1] + 1 : std::max(t[i + 1][j], t[i][j + 1]);
    }
  }
  return t[0][0];
}

bool isSubsequence(const std::vector<std::string>& sub, const std::vector<std::string>& of) {
  size_t k = 0;
  for (const auto& s : of) {
    if (k < sub.size() && sub[k] == s) ++k;
  }
  return k == sub.size();
}

// With repeated lines: removals are lines of `before` in order, additions
// lines of `after` in order, and exactly the lines outside a longest common
// subsequence (checked against the textbook table).
TEST(LineDiff, RandomDiffsWithRepeatedLinesAreMinimal) {
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    auto randomLines = [&] {
      std::vector<std::string> v(rng() % 14);
      for (auto& s : v) s = std::string(1, static_cast<char>('a' + rng() % 5));
      return v;
    };
    const std::vector<std::string> a = randomLines();
    const std::vector<std::string> b = randomLines();
    const std::string d = diffLines(joined(a), joined(b));
    std::vector<std::string> removed;
    std::vector<std::string> added;
    for (const Op& op : ops(d)) {
      ASSERT_TRUE(op.sign == '-' || op.sign == '+') << d;
      (op.sign == '-' ? removed : added).push_back(op.body);
    }
    const size_t common = lcsLength(a, b);
    EXPECT_EQ(a.size() - removed.size(), common) << joined(a) << "--\n" << joined(b) << d;
    EXPECT_EQ(b.size() - added.size(), common) << joined(a) << "--\n" << joined(b) << d;
    EXPECT_TRUE(isSubsequence(removed, a)) << d;
    EXPECT_TRUE(isSubsequence(added, b)) << d;
  }
}

// With distinct lines (as in canonical configuration text) the diff says
// exactly where each change is: replaying it over `before` gives `after`,
// and between two kept lines removals come before additions.
TEST(LineDiff, RandomDiffsOfDistinctLinesReplayExactly) {
  std::mt19937 rng(11);
  for (int round = 0; round < 3000; ++round) {
    auto randomLines = [&] {
      std::vector<std::string> v;
      for (int k = 0; k < 20; ++k) {
        if (rng() % 3 != 0) v.push_back("line " + std::to_string(k));
      }
      // Mostly in order, with a few moved lines.
      for (int swaps = static_cast<int>(rng() % 3); swaps > 0 && v.size() > 1; --swaps) {
        std::swap(v[rng() % v.size()], v[rng() % v.size()]);
      }
      return v;
    };
    const std::vector<std::string> a = randomLines();
    const std::vector<std::string> b = randomLines();
    const std::string d = diffLines(joined(a), joined(b));
    auto position = [](const std::vector<std::string>& v, const std::string& s) {
      return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
    };
    size_t i = 0;  // next line of a not yet accounted for
    size_t j = 0;  // next line of b
    char previous = '=';
    size_t kept = 0;
    for (const Op& op : ops(d)) {
      const size_t at = position(op.sign == '-' ? a : b, op.body);
      const size_t from = op.sign == '-' ? i : j;
      ASSERT_LT(at, (op.sign == '-' ? a : b).size()) << d;
      ASSERT_GE(at, from) << d;
      const size_t keep = at - from;  // lines kept on both sides before this one
      for (size_t k = 0; k < keep; ++k) {
        ASSERT_LT(i + k, a.size()) << d;
        ASSERT_LT(j + k, b.size()) << d;
        ASSERT_EQ(a[i + k], b[j + k]) << d;
      }
      if (keep == 0 && op.sign == '-') {
        EXPECT_NE(previous, '+') << "removal after addition\n" << d;
      }
      i += keep;
      j += keep;
      kept += keep;
      (op.sign == '-' ? i : j) += 1;
      previous = op.sign;
    }
    ASSERT_EQ(a.size() - i, b.size() - j) << joined(a) << "--\n" << joined(b) << d;
    for (; i < a.size(); ++i, ++j, ++kept) ASSERT_EQ(a[i], b[j]) << d;
    EXPECT_EQ(kept, lcsLength(a, b)) << d;
  }
}

TEST(LineDiff, LargeConfigurationsAreFast) {
  std::string a;
  std::string b;
  for (int i = 0; i < 20000; ++i) {
    const std::string line = "set application shop server s" + std::to_string(i) + " weight 1";
    a += line + "\n";
    if (i % 1000 == 500) {
      b += line + " max-connections 5\n";
    } else if (i % 7 != 3) {
      b += line + "\n";
    }
  }
  // The worst case: everything changed.
  std::string c;
  for (int i = 0; i < 20000; ++i) c += "set application other server x" + std::to_string(i) + "\n";
  const auto start = std::chrono::steady_clock::now();
  const std::string d1 = diffLines(a, b);
  const std::string d2 = diffLines(a, c);
  const std::string d3 = diffLines(a, std::string(a.rbegin(), a.rend()));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_NE(d1.find("- set application shop server s500 weight 1\n"
                    "+ set application shop server s500 weight 1 max-connections 5\n"),
            std::string::npos);
  EXPECT_EQ(d1.find("+ set application shop server s501"), std::string::npos);
  // Many identical lines: bounded, still a correct (if not minimal) diff.
  const std::string same(200000, '\n');
  const std::string d4 = diffLines(same, same + "x\n");
  EXPECT_EQ(d4, "+ x\n");
  std::string manyA;
  std::string manyB;
  for (int i = 0; i < 5000; ++i) {
    manyA += "a\nb\n";
    manyB += "b\na\n";
  }
  const std::string d5 = diffLines(manyA, manyB);
  EXPECT_FALSE(d5.empty());
}

}  // namespace
}  // namespace fulcrum
