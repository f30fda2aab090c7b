/* The C API from a C program, built against the installed slabpool.pc with a C compiler
   (install.pkg_config): the C header needs no C++ flag. Exits non-zero on the first failure. */
#include <slabpool/slabpool.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  void* p = sp_malloc(100);
  if (p == NULL || !sp_owns(p)) {
    fprintf(stderr, "c consumer: FAILED: sp_malloc\n");
    return 1;
  }
  memset(p, 1, 100);
  sp_free(p);
  puts("c consumer: ok");
  return 0;
}
