// Prints every option's value after the environment was read, one "index=value" per line.
// options_test runs it with crafted SLABPOOL_* variables and reads stdout and stderr.
#include <slabpool/slabpool.h>

#include <cstdio>

int main() {
  sp_free(sp_malloc(1));  // the first allocation reads the environment
  for (int i = 0; i < SP_OPTION_COUNT_; ++i) {
    std::printf("%d=%lld\n", i, sp_option_get(i));
  }
  return 0;
}
