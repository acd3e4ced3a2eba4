// Hash functions with fixed definitions: every engine, on every host and with
// every standard library, must compute the same value for the same input
// (std::hash differs between libstdc++ and libc++ and may be randomised).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fulcrum::hash {

// splitmix64's finaliser: a bijection with full avalanche, so XOR-combining
// inputs before it does not leave visible structure in the output.
constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Words are assembled little-endian by hand so that a big-endian engine hashes
// the same bytes to the same value.
inline uint64_t bytes(const uint8_t* data, size_t size, uint64_t seed) {
  uint64_t h = mix64(seed ^ size);
  while (size > 0) {
    const size_t n = std::min<size_t>(size, 8);
    uint64_t word = 0;
    for (size_t i = 0; i < n; ++i) word |= uint64_t{data[i]} << (8 * i);
    h = mix64(h ^ word) + 0x9e3779b97f4a7c15ULL;
    data += n;
    size -= n;
  }
  return mix64(h);
}

// FNV-1a (64-bit): a stable id for a name.
constexpr uint64_t fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace fulcrum::hash
