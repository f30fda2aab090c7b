/* Checks shared by the preload test programs (C and C++). Each program runs twice under ctest:
 * with the shim preloaded (PRELOAD_EXPECT_SLABPOOL=1) and on plain glibc, so every expectation
 * written here is also checked against glibc's own behaviour. */
#ifndef SLABPOOL_TESTS_PRELOAD_CHECK_H
#define SLABPOOL_TESTS_PRELOAD_CHECK_H

/* Built with _GNU_SOURCE (dladdr, reallocarray, pvalloc). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_passes = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++check_passes;                                                          \
    } else {                                                                   \
      ++check_failures;                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* Whether malloc resolves into libslabpool-preload.so in this process. */
static inline int shim_active(void) {
  Dl_info info;
  void* fn = dlsym(RTLD_DEFAULT, "malloc");
  return fn != NULL && dladdr(fn, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, "libslabpool-preload") != NULL;
}

/* Whether this run is the one under the shim (ctest sets the variable next to LD_PRELOAD). */
static inline int expect_shim(void) {
  const char* value = getenv("PRELOAD_EXPECT_SLABPOOL");
  return value != NULL && strcmp(value, "1") == 0;
}

/* Fails unless the process runs on the allocator this run is meant to test. */
static inline void check_allocator_in_use(void) {
  CHECK(shim_active() == expect_shim());
}

/* Prints the summary line ctest shows and returns the exit status. */
static inline int check_summary(const char* program) {
  printf("%s: %d passed, %d failed\n", program, check_passes, check_failures);
  return check_failures == 0 ? 0 : 1;
}

/* Writes a pattern derived from `seed` over n bytes; check_pattern verifies it is intact. */
static inline void fill_pattern(void* p, size_t n, unsigned seed) {
  unsigned char* b = (unsigned char*)p;
  for (size_t i = 0; i < n; ++i) b[i] = (unsigned char)(seed + i * 131u);
}
static inline int check_pattern(const void* p, size_t n, unsigned seed) {
  const unsigned char* b = (const unsigned char*)p;
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != (unsigned char)(seed + i * 131u)) return 0;
  }
  return 1;
}

#endif /* SLABPOOL_TESTS_PRELOAD_CHECK_H */
