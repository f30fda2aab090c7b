#include "report.hpp"

#include <cstdlib>

#include "options.hpp"
#include "platform/platform.hpp"

namespace slabpool::detail {
namespace {

void write_line(const char* prefix, std::initializer_list<const char*> parts) {
  os::write_error(prefix);
  for (const char* part : parts) os::write_error(part != nullptr ? part : "(null)");
  os::write_error("\n");
}

}  // namespace

char* format_hex(char* out, unsigned long long value) noexcept {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value & 15];
    value >>= 4;
  } while (value != 0);
  char* w = out;
  *w++ = '0';
  *w++ = 'x';
  while (n > 0) *w++ = digits[--n];
  *w = '\0';
  return out;
}

char* format_decimal(char* out, unsigned long long value) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  char* w = out;
  while (n > 0) *w++ = digits[--n];
  *w = '\0';
  return out;
}

void fatal(std::initializer_list<const char*> parts) noexcept {
  write_line("slabpool: ", parts);
  std::abort();
}

void report_fatal(const char* operation, const void* pointer, const char* problem) noexcept {
  char hex[20];
  format_hex(hex, reinterpret_cast<unsigned long long>(pointer));
  fatal({operation, "(", hex, "): ", problem});
}

void warn(std::initializer_list<const char*> parts) noexcept {
  write_line("slabpool: warning: ", parts);
}

void say(std::initializer_list<const char*> parts) noexcept {
  write_line("slabpool: ", parts);
}

void note_verbose(std::initializer_list<const char*> parts) noexcept {
  if (option(SP_OPTION_VERBOSE) != 0) write_line("slabpool: ", parts);
}

}  // namespace slabpool::detail
