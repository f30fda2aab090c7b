// Everything slabpool writes to stderr goes through here: fatal reports (one line, then abort),
// warnings, and SLABPOOL_VERBOSE notes. Never allocates, so it is safe inside the allocator, before
// main and after exit has started.
#pragma once

#include <initializer_list>

namespace slabpool::detail {

// Writes "slabpool: " and the parts, then a newline, to stderr and aborts. The one fatal writer:
// every other fatal report (bad frees, lock order, adapters' misuse reports) is built on it.
[[noreturn]] void fatal(std::initializer_list<const char*> parts) noexcept;

// "slabpool: <operation>(<pointer>): <problem>" and abort: a bad pointer, named.
[[noreturn]] void report_fatal(const char* operation, const void* pointer,
                               const char* problem) noexcept;

// "slabpool: warning: <parts>" on stderr; the program goes on.
void warn(std::initializer_list<const char*> parts) noexcept;

// "slabpool: <parts>" on stderr.
void say(std::initializer_list<const char*> parts) noexcept;

// "slabpool: <parts>" on stderr when SLABPOOL_VERBOSE is set; nothing otherwise.
void note_verbose(std::initializer_list<const char*> parts) noexcept;

// Formats `value` as 0x-prefixed hex into `out` (at least 19 bytes); returns out.
char* format_hex(char* out, unsigned long long value) noexcept;
// Formats `value` in decimal into `out` (at least 21 bytes); returns out.
char* format_decimal(char* out, unsigned long long value) noexcept;

}  // namespace slabpool::detail
