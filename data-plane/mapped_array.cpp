#include "data-plane/mapped_array.h"

#include <cstdio>

namespace fulcrum {

long anonHugePagesIn(std::initializer_list<const void*> addresses) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return -1;
  char line[512];
  // The kernel may merge neighbouring mappings with the same flags into one,
  // so a mapping is counted when it holds any of the addresses, and once.
  bool inside = false;
  long total = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    // Header lines read "lo-hi perms offset dev inode path"; field lines
    // read "Name: value kB" and never parse as two hex numbers and a dash.
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      inside = false;
      for (const void* a : addresses) {
        const auto p = reinterpret_cast<uintptr_t>(a);
        if (a != nullptr && p >= lo && p < hi) inside = true;
      }
      continue;
    }
    long kb = 0;
    if (inside && std::sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
      total = (total < 0 ? 0 : total) + kb * 1024;
  }
  std::fclose(f);
  return total;
}

}  // namespace fulcrum
