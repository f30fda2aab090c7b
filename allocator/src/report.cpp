#include "report.hpp"

#include <cstdlib>

#include "os.hpp"

namespace slabpool::detail {

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

void report_fatal(const char* operation, const void* pointer, const char* problem) noexcept {
  char hex[20];
  format_hex(hex, reinterpret_cast<unsigned long long>(pointer));
  os::write_error("slabpool: ");
  os::write_error(operation);
  os::write_error("(");
  os::write_error(hex);
  os::write_error("): ");
  os::write_error(problem);
  os::write_error("\n");
  std::abort();
}

}  // namespace slabpool::detail
