// What the kernel counts for this process (/proc/self/statm): resident memory, which the trim,
// adapter and soak tests hold against what they freed, and the address space, which the
// out-of-memory tests set RLIMIT_AS from. Read with stdio, which uses the system allocator in
// these tests, never the allocator under test.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdio>

namespace sp_test {

struct statm_pages {
  unsigned long size = 0;      // the whole address space (VmSize)
  unsigned long resident = 0;  // resident set (VmRSS)
};

// Both 0 when /proc/self/statm cannot be read.
inline statm_pages read_statm() {
  statm_pages pages;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%lu %lu", &pages.size, &pages.resident) != 2) pages = statm_pages{};
    std::fclose(f);
  }
  return pages;
}

inline std::size_t page_bytes() {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Resident bytes of this process; 0 when unreadable.
inline std::size_t resident_bytes() {
  return read_statm().resident * page_bytes();
}

// Address space the process uses now (VmSize); 0 when unreadable.
inline std::size_t address_space_bytes() {
  return read_statm().size * page_bytes();
}

}  // namespace sp_test
