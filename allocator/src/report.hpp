// Fatal error reports: one line on stderr naming the operation and the pointer, then abort. Never
// allocates, so it is safe from inside the allocator.
#pragma once

namespace slabpool::detail {

[[noreturn]] void report_fatal(const char* operation, const void* pointer,
                               const char* problem) noexcept;

// Formats `value` as 0x-prefixed hex into `out` (at least 19 bytes); returns out.
char* format_hex(char* out, unsigned long long value) noexcept;

}  // namespace slabpool::detail
