/* Every C allocation function the shim exports, with the edge cases glibc defines: errno values,
 * zero sizes, alignment rules, page rounding, overflow. Runs under the shim and on plain glibc;
 * the few checks that only make sense under one of them say so. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* glibc exports these (for programs that want "the real malloc"); its headers do not declare them.
 */
void* __libc_malloc(size_t size);
void __libc_free(void* p);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);

/* Hides a size from the compiler, which would otherwise warn about the impossible requests these
 * tests make on purpose. */
static size_t opaque(size_t value) {
  volatile size_t hidden = value;
  return hidden;
}

/* The same for pointers: keeps the compiler's use-after-free and free-nonheap-object analysis out
 * of the checks that a failed realloc leaves its block alone and that foreign frees are safe. */
static void* opaque_pointer(void* p) {
  void* volatile hidden = p;
  return hidden;
}

static int aligned_to(const void* p, size_t alignment) {
  return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* A block of `size` bytes is usable over malloc_usable_size bytes: write all of them. */
static void check_block(void* p, size_t size, size_t alignment, unsigned seed) {
  CHECK(p != NULL);
  if (p == NULL) return;
  CHECK(aligned_to(p, alignment));
  const size_t usable = malloc_usable_size(p);
  CHECK(usable >= size);
  fill_pattern(p, usable, seed);
  CHECK(check_pattern(p, usable, seed));
}

static void test_malloc_free(void) {
  static const size_t sizes[] = {0,       1,     15,     16,     17,      100,           1024,
                                 4096,    65536, 131072, 131073, 1 << 20, (4 << 20) - 1, 8 << 20,
                                 64 << 20};
  void* blocks[sizeof sizes / sizeof sizes[0]];
  for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    blocks[i] = malloc(sizes[i]);
    check_block(blocks[i], sizes[i], 16, i);
  }
  for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    CHECK(check_pattern(blocks[i], sizes[i], i)); /* no block overlapped another */
    free(blocks[i]);
  }
  void* a = malloc(0);
  void* b = malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  free(a);
  free(b);
  free(NULL);
  errno = 0;
  CHECK(malloc(opaque(SIZE_MAX)) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(malloc(opaque(PTRDIFF_MAX)) == NULL && errno == ENOMEM);
  CHECK(malloc_usable_size(NULL) == 0);
}

static void test_calloc(void) {
  for (size_t size = 1; size < (1 << 22); size = size * 3 + 1) {
    unsigned char* p = calloc(size, 1);
    CHECK(p != NULL);
    if (p == NULL) continue;
    size_t nonzero = 0;
    for (size_t i = 0; i < size; ++i) nonzero += p[i] != 0;
    CHECK(nonzero == 0);
    memset(p, 0xab, size); /* dirty it, so a reused block must be cleared again */
    free(p);
  }
  void* z = calloc(0, 16);
  CHECK(z != NULL);
  free(z);
  errno = 0;
  CHECK(calloc(opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(calloc(opaque((size_t)1 << 32), (size_t)1 << 32) == NULL && errno == ENOMEM);
}

static void test_realloc(void) {
  char* p = realloc(NULL, 10); /* realloc(NULL, n) is malloc(n) */
  CHECK(p != NULL);
  memcpy(p, "0123456789", 10);
  for (size_t size = 16; size <= (16 << 20); size *= 4) {
    p = realloc(p, size);
    CHECK(p != NULL && memcmp(p, "0123456789", 10) == 0);
  }
  p = realloc(p, 5); /* shrinking keeps the prefix */
  CHECK(p != NULL && memcmp(p, "01234", 5) == 0);
  errno = 0;
  CHECK(realloc(opaque_pointer(p), opaque(SIZE_MAX)) == NULL && errno == ENOMEM);
  CHECK(memcmp(p, "01234", 5) == 0); /* a failed realloc leaves the block alone */
  CHECK(realloc(p, 0) == NULL);      /* glibc: frees p and returns NULL */

  void* q = malloc(32);
  q = reallocarray(q, 100, 8);
  CHECK(q != NULL && malloc_usable_size(q) >= 800);
  memset(q, 7, 800);
  errno = 0;
  CHECK(reallocarray(opaque_pointer(q), opaque(SIZE_MAX / 4), 8) == NULL && errno == ENOMEM);
  CHECK(((unsigned char*)q)[799] == 7);
  CHECK(reallocarray(q, 0, 8) == NULL); /* realloc(q, 0): freed */
}

static void test_posix_memalign(void) {
  for (size_t alignment = sizeof(void*); alignment <= ((size_t)32 << 20); alignment *= 2) {
    void* p = NULL;
    CHECK(posix_memalign(&p, alignment, 100) == 0);
    check_block(p, 100, alignment, 3);
    free(p);
  }
  void* sentinel = (void*)0x1234;
  static const size_t bad[] = {0, 1, 4, 12, 24, 48, 3, (size_t)1 << 63 | 8};
  for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    void* p = sentinel;
    CHECK(posix_memalign(&p, bad[i], 16) == EINVAL);
    CHECK(p == sentinel); /* left untouched on error */
  }
  void* p = sentinel;
  CHECK(posix_memalign(&p, 64, opaque(SIZE_MAX - 100)) == ENOMEM);
  CHECK(p == sentinel);
  p = NULL;
  CHECK(posix_memalign(&p, 256, 0) == 0 && p != NULL && aligned_to(p, 256));
  free(p);
}

static void test_aligned_alloc_memalign(void) {
  for (size_t alignment = 1; alignment <= ((size_t)64 << 20); alignment *= 2) {
    const size_t size = alignment < 4096 ? alignment * 2 : 4096 + 16;
    void* a = aligned_alloc(alignment, size);
    check_block(a, size, alignment, 5);
    void* m = memalign(alignment, 1000);
    check_block(m, 1000, alignment, 6);
    CHECK(check_pattern(a, size, 5));
    free(a);
    free(m);
  }
  void* m = memalign(opaque(24), 100); /* glibc rounds a non-power-of-two alignment up */
  check_block(m, 100, 32, 7);
  free(m);
  errno = 0;
  CHECK(memalign(opaque(SIZE_MAX / 2 + 2), 16) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(aligned_alloc(64, opaque(SIZE_MAX - 1000)) == NULL && errno == ENOMEM);
  /* realloc of a block aligned beyond 2 MiB keeps its bytes */
  char* big = aligned_alloc((size_t)16 << 20, 100);
  CHECK(big != NULL && aligned_to(big, (size_t)16 << 20));
  memcpy(big, "aligned", 8);
  big = realloc(big, 1 << 20);
  CHECK(big != NULL && strcmp(big, "aligned") == 0);
  free(big);
}

static void test_page_functions(void) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 100000};
  for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    void* v = valloc(sizes[i]);
    check_block(v, sizes[i], page, 8);
    free(v);
    void* p = pvalloc(sizes[i]);
    const size_t rounded = (sizes[i] + page - 1) / page * page;
    check_block(p, rounded == 0 ? 1 : rounded, page, 9);
    free(p);
  }
  errno = 0;
  CHECK(pvalloc(opaque(SIZE_MAX - 10)) == NULL && errno == ENOMEM);
}

static void test_libc_names(void) {
  void* a = __libc_malloc(100);
  void* b = __libc_calloc(10, 10);
  void* c = __libc_memalign(4096, 100);
  void* d = __libc_valloc(100);
  void* e = __libc_pvalloc(100);
  CHECK(a && b && c && d && e && aligned_to(c, 4096) && aligned_to(d, 4096));
  a = __libc_realloc(a, 5000);
  CHECK(a != NULL);
  /* the glibc names and the standard ones share one heap */
  free(a);
  __libc_free(b);
  free(c);
  __libc_free(d);
  free(e);
  void* f = malloc(64);
  __libc_free(f);
  const int trimmed = malloc_trim(0);
  CHECK(trimmed == 0 || trimmed == 1);
}

/* malloc_trim reports whether memory went back to the OS (shim: everything idle goes back). */
static void test_malloc_trim(void) {
  void* blocks[64];
  for (unsigned i = 0; i < 64; ++i) {
    blocks[i] = malloc(100000);
    if (blocks[i] != NULL) memset(blocks[i], 1, 100000);
  }
  for (unsigned i = 0; i < 64; ++i) free(blocks[i]);
  const int trimmed = malloc_trim(0);
  CHECK(trimmed == 0 || trimmed == 1);
  if (expect_shim()) CHECK(trimmed == 1);
}

/* C23's sized frees and the old cfree: glibc 2.36 has neither (cfree only for old binaries). */
static void test_sized_frees(void) {
  void (*free_sized_fn)(void*, size_t) = (void (*)(void*, size_t))dlsym(RTLD_DEFAULT, "free_sized");
  void (*free_aligned_sized_fn)(void*, size_t, size_t) =
      (void (*)(void*, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
  void (*cfree_fn)(void*) = (void (*)(void*))dlsym(RTLD_DEFAULT, "cfree");
  if (expect_shim()) CHECK(free_sized_fn != NULL && free_aligned_sized_fn != NULL && cfree_fn);
  if (free_sized_fn != NULL) {
    free_sized_fn(malloc(100), 100);
    free_sized_fn(NULL, 0);
  }
  if (free_aligned_sized_fn != NULL) {
    free_aligned_sized_fn(aligned_alloc(256, 512), 256, 512);
    free_aligned_sized_fn(aligned_alloc((size_t)8 << 20, 64), (size_t)8 << 20, 64);
  }
  if (cfree_fn != NULL && expect_shim()) cfree_fn(malloc(10));
}

/* Pointers the shim never handed out (shim only: glibc aborts on most of these). */
static void test_foreign_pointers(void) {
  static char buffer[4096] __attribute__((aligned(64)));
  free(opaque_pointer(buffer + 64)); /* left alone: no crash, the buffer stays intact */
  buffer[64] = 'x';
  CHECK(buffer[64] == 'x');
  CHECK(malloc_usable_size(opaque_pointer(buffer + 64)) == 0);
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    signal(SIGABRT, SIG_DFL);
    void* r =
        realloc(opaque_pointer(buffer + 64), 10); /* size unknown: must abort, never copy garbage */
    _exit(r == NULL ? 3 : 4);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* Random sizes, contents checked before each free: overlaps or stray writes show up here. */
static void test_churn(void) {
  enum { kSlots = 4096, kRounds = 200000 };
  static void* slots[kSlots];
  static size_t sizes[kSlots];
  unsigned state = 12345;
  for (unsigned round = 0; round < kRounds; ++round) {
    state = state * 1103515245u + 12345u;
    const unsigned i = (state >> 8) % kSlots;
    if (slots[i] != NULL) {
      CHECK(check_pattern(slots[i], sizes[i], i));
      free(slots[i]);
    }
    const unsigned r = state >> 20;
    sizes[i] = r % 64 == 0 ? (r * 7u) % 300000u : (r % 4 == 0 ? r % 4000u : r % 200u);
    slots[i] = (r & 1) ? malloc(sizes[i]) : calloc(1, sizes[i]);
    if (slots[i] != NULL) fill_pattern(slots[i], sizes[i], i);
  }
  for (unsigned i = 0; i < kSlots; ++i) {
    if (slots[i] != NULL) CHECK(check_pattern(slots[i], sizes[i], i));
    free(slots[i]);
  }
}

int main(void) {
  check_allocator_in_use();
  test_malloc_free();
  test_calloc();
  test_realloc();
  test_posix_memalign();
  test_aligned_alloc_memalign();
  test_page_functions();
  test_libc_names();
  test_malloc_trim();
  test_sized_frees();
  if (shim_active()) test_foreign_pointers();
  test_churn();
  return check_summary("api_test");
}
