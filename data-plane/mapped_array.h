// MappedArray<T>: a fixed-size array in its own anonymous mapping, aligned to
// 2 MiB and offered to the kernel for transparent huge pages.
//
// Why: the session table's records and buckets are read at random, one or two
// lines per packet, over hundreds of MiB. With 4 KiB pages nearly every
// lookup of a 1M-session table also misses the TLB and walks the page
// tables; with 2 MiB pages the walks mostly vanish. The kernel may refuse
// (THP set to "never", fragmented memory); the array then works the same on
// small pages. anonHugePagesIn() says what was granted.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__SANITIZE_ADDRESS__)
#define FULCRUM_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FULCRUM_HAS_ASAN 1
#endif
#endif
#ifdef FULCRUM_HAS_ASAN
#include <sanitizer/asan_interface.h>
#define FULCRUM_ASAN_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FULCRUM_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FULCRUM_ASAN_POISON(p, n) ((void)(p), (void)(n))
#define FULCRUM_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace fulcrum {

template <class T>
class MappedArray {
 public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  MappedArray() = default;
  // Default-constructs `count` elements (so their pages are touched now, not
  // on the packet path). Throws std::bad_alloc when the mapping fails.
  explicit MappedArray(size_t count) : count_(count) {
    if (count == 0) return;
    // Arrays under one huge page stay on small pages: a 2 MiB page for a
    // test's 16-session table would waste nearly all of it.
    const bool huge = count * sizeof(T) >= kHugePage;
    const size_t unit = huge ? kHugePage : static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    bytes_ = (count * sizeof(T) + unit - 1) / unit * unit;
    // Over-allocate by one huge page and trim, so the array starts on a
    // 2 MiB boundary: only aligned 2 MiB ranges can become huge pages.
    const size_t mapped = bytes_ + (huge ? kHugePage : 0);
    void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + unit - 1) & ~(uintptr_t{unit} - 1);
    if (aligned > start) ::munmap(raw, aligned - start);
    const uintptr_t end = aligned + bytes_;
    if (start + mapped > end) ::munmap(reinterpret_cast<void*>(end), start + mapped - end);
    data_ = reinterpret_cast<T*>(aligned);
    // Advice only: refused advice leaves small pages, which still work.
    if (huge) (void)::madvise(data_, bytes_, MADV_HUGEPAGE);
    std::uninitialized_default_construct_n(data_, count_);
    // The slack after the last element is mapped memory: without this, an
    // index past the end that lands there would go unseen by ASan.
    FULCRUM_ASAN_POISON(data_ + count_, bytes_ - count_ * sizeof(T));
  }
  ~MappedArray() { reset(); }
  MappedArray(MappedArray&& o) noexcept : data_(o.data_), count_(o.count_), bytes_(o.bytes_) {
    o.data_ = nullptr;
    o.count_ = o.bytes_ = 0;
  }
  MappedArray& operator=(MappedArray&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = o.data_;
      count_ = o.count_;
      bytes_ = o.bytes_;
      o.data_ = nullptr;
      o.count_ = o.bytes_ = 0;
    }
    return *this;
  }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }

 private:
  void reset() {
    if (data_ == nullptr) return;
    std::destroy_n(data_, count_);
    FULCRUM_ASAN_UNPOISON(data_ + count_, bytes_ - count_ * sizeof(T));
    ::munmap(data_, bytes_);
    data_ = nullptr;
  }

  T* data_ = nullptr;
  size_t count_ = 0;
  size_t bytes_ = 0;
};

// Bytes the kernel backs with huge pages now in the mappings that hold any of
// `addresses` (AnonHugePages in /proc/self/smaps); -1 when it cannot tell.
// For figures and tests, not for the packet path: it reads a /proc file.
long anonHugePagesIn(std::initializer_list<const void*> addresses);

}  // namespace fulcrum
