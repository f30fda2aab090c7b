/* The edges of a process's and a thread's life under the shim: allocations before main and
 * after exit begins, thread churn with cross-thread frees, other libraries' thread-exit
 * destructors allocating after the allocator's own ran, fork with threads running (with and
 * without exec), dlopen/dlclose of a library that allocates, and exit while threads allocate.
 * argv[1] is the test library to dlopen. */
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

enum { kEarlyBlocks = 64 };
static void* g_early[kEarlyBlocks];
static void* g_late;

/* Runs before main: the allocator must already work, with nothing set up explicitly. */
__attribute__((constructor)) static void allocate_before_main(void) {
  for (unsigned i = 0; i < kEarlyBlocks; ++i) {
    g_early[i] = malloc(16u << (i % 12));
    fill_pattern(g_early[i], 16u << (i % 12), i);
  }
}

/* exit() has begun: allocate, resize and free, and free a block main left behind. Failures here
 * turn into the exit status, the only channel left. */
static void allocate_after_exit_began(void) {
  char* p = malloc(100);
  p = realloc(p, 100000);
  void* q = calloc(1000, 10);
  if (p == NULL || q == NULL || !check_pattern(g_late, 5000, 77)) _exit(21);
  free(p);
  free(q);
  free(g_late);
}

__attribute__((destructor)) static void allocate_in_destructor(void) {
  void* p = malloc(12345);
  if (p == NULL) _exit(22);
  free(p);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* --- thread churn: short-lived threads that free each other's blocks ---------------------------
 */
enum { kChurnThreads = 4, kChurnRounds = 40, kChurnBlocks = 2000 };
static void* g_exchange[kChurnThreads][kChurnBlocks];

static void* churn_thread(void* arg) {
  const unsigned self = (unsigned)(uintptr_t)arg;
  for (unsigned i = 0; i < kChurnBlocks; ++i) {
    g_exchange[self][i] = malloc(8 + (i * 37) % 2000);
    fill_pattern(g_exchange[self][i], 8, self);
  }
  return NULL;
}

static void* churn_free_thread(void* arg) {
  const unsigned victim = (unsigned)(uintptr_t)arg;
  unsigned bad = 0;
  for (unsigned i = 0; i < kChurnBlocks; ++i) {
    bad += !check_pattern(g_exchange[victim][i], 8, victim);
    free(g_exchange[victim][i]); /* freed by a thread that did not allocate it */
  }
  return (void*)(uintptr_t)bad;
}

static void test_thread_churn(void) {
  for (unsigned round = 0; round < kChurnRounds; ++round) {
    pthread_t threads[kChurnThreads];
    for (unsigned t = 0; t < kChurnThreads; ++t) {
      CHECK(pthread_create(&threads[t], NULL, churn_thread, (void*)(uintptr_t)t) == 0);
    }
    for (unsigned t = 0; t < kChurnThreads; ++t) pthread_join(threads[t], NULL);
    /* the allocating threads are gone: their blocks are freed by new threads */
    for (unsigned t = 0; t < kChurnThreads; ++t) {
      CHECK(pthread_create(&threads[t], NULL, churn_free_thread, (void*)(uintptr_t)t) == 0);
    }
    for (unsigned t = 0; t < kChurnThreads; ++t) {
      void* bad = NULL;
      pthread_join(threads[t], &bad);
      CHECK(bad == NULL);
    }
  }
}

/* --- a thread-exit destructor registered after the allocator's, allocating ------------------- */
static pthread_key_t g_late_key;
static int g_destructor_runs;

static void late_key_destructor(void* value) {
  /* The allocator's own key destructor may already have handed this thread's heap over. */
  char* copy = malloc(1000);
  if (copy != NULL) memcpy(copy, value, 32);
  free(value);
  if (++g_destructor_runs < 3 && copy != NULL) {
    pthread_setspecific(g_late_key, copy); /* asks pthread for another round */
  } else {
    free(copy);
  }
}

static void* key_thread(void* arg) {
  (void)arg;
  char* value = malloc(64);
  memset(value, 'k', 64);
  pthread_setspecific(g_late_key, value);
  void* scratch[100];
  for (unsigned i = 0; i < 100; ++i) scratch[i] = malloc(i * 10);
  for (unsigned i = 0; i < 100; ++i) free(scratch[i]);
  return NULL;
}

static void test_thread_exit_destructors(void) {
  CHECK(pthread_key_create(&g_late_key, late_key_destructor) == 0);
  for (unsigned i = 0; i < 20; ++i) {
    g_destructor_runs = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, key_thread, NULL) == 0);
    pthread_join(t, NULL);
    CHECK(g_destructor_runs == 3);
  }
}

/* --- fork while other threads allocate ----------------------------------------------------------
 */
static volatile int g_stop_background;

static void* background_allocator(void* arg) {
  (void)arg;
  void* ring[64] = {0};
  for (unsigned i = 0; !g_stop_background; ++i) {
    free(ring[i % 64]);
    ring[i % 64] = malloc((i * 97) % 5000);
  }
  for (unsigned i = 0; i < 64; ++i) free(ring[i]);
  return NULL;
}

static void* child_thread(void* arg) {
  void** blocks = (void**)arg;
  for (unsigned i = 0; i < 1000; ++i) blocks[i] = malloc(i);
  return NULL;
}

/* In the child: allocate, free blocks the parent allocated before fork, run a thread. */
static int child_work(void** parent_blocks, unsigned count) {
  for (unsigned i = 0; i < count; ++i) {
    if (!check_pattern(parent_blocks[i], 24, i)) return 11;
    free(parent_blocks[i]);
  }
  void* blocks[1000];
  pthread_t t;
  if (pthread_create(&t, NULL, child_thread, blocks) != 0) return 12;
  pthread_join(t, NULL);
  for (unsigned i = 0; i < 1000; ++i) free(blocks[i]);
  void* big = malloc(10 << 20);
  if (big == NULL) return 13;
  memset(big, 1, 10 << 20);
  free(big);
  return 0;
}

static void test_fork(const char* self_path) {
  pthread_t threads[3];
  g_stop_background = 0;
  for (unsigned t = 0; t < 3; ++t) pthread_create(&threads[t], NULL, background_allocator, NULL);
  /* Live past the trim interval with slow paths running, so a background trimmer (if the
   * allocator has one) exists while we fork. */
  for (unsigned i = 0; i < 3; ++i) {
    sleep_ms(120);
    free(malloc(200000 + i * 65536));
  }
  enum { kParentBlocks = 500 };
  void* parent_blocks[kParentBlocks];
  for (unsigned round = 0; round < 12; ++round) {
    for (unsigned i = 0; i < kParentBlocks; ++i) {
      parent_blocks[i] = malloc(24 + i);
      fill_pattern(parent_blocks[i], 24, i);
    }
    fflush(NULL);
    const pid_t child = fork();
    if (child == 0) {
      if (round % 3 == 2) { /* fork + exec: the new image runs under the same allocator */
        execl(self_path, self_path, "--exec-child", (char*)NULL);
        _exit(14);
      }
      const int status = child_work(parent_blocks, kParentBlocks);
      if (round % 2 == 0) exit(status); /* through exit: destructors, stats, trimmer stop */
      _exit(status);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "status %d\n", status);
    for (unsigned i = 0; i < kParentBlocks; ++i) {
      CHECK(check_pattern(parent_blocks[i], 24, i));
      free(parent_blocks[i]);
    }
  }
  g_stop_background = 1;
  for (unsigned t = 0; t < 3; ++t) pthread_join(threads[t], NULL);
}

/* --- what the allocator brings into a C program -------------------------------------------- */
/* 1 when a mapping of the process's names `library`. */
static int mapped(const char* library) {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return -1;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, maps) != NULL) found = strstr(line, library) != NULL;
  fclose(maps);
  return found;
}

/* The shim needs libc only: libstdc++ (and with it libm and libgcc_s) in every C program cost
 * 1.3 MiB of resident memory (issue 12). */
static void test_no_cxx_runtime_loaded(void) {
  CHECK(mapped("libstdc++") == 0);
  CHECK(mapped("libgcc_s") == 0);
}

/* --- dlopen of a library that allocates ------------------------------------------------------ */
static void test_dlopen(const char* library) {
  for (unsigned round = 0; round < 25; ++round) {
    void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle != NULL);
    if (handle == NULL) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return;
    }
    char* (*make)(size_t) = (char* (*)(size_t))dlsym(handle, "testlib_make_string");
    void (*take)(void*) = (void (*)(void*))dlsym(handle, "testlib_take");
    unsigned long (*churn)(unsigned) = (unsigned long (*)(unsigned))dlsym(handle, "testlib_churn");
    CHECK(make != NULL && take != NULL && churn != NULL);
    if (make == NULL || take == NULL || churn == NULL) return;
    char* s = make(1000); /* allocated in the library, freed here */
    CHECK(s != NULL && strlen(s) == 1000);
    free(s);
    void* mine = malloc(777); /* allocated here, freed in the library */
    take(mine);
    CHECK(churn(4) == churn(1) * 4); /* threads and thread_locals inside the library */
    if (round == 0) {
      int (*new_fails_cleanly)(void) = (int (*)(void))dlsym(handle, "testlib_new_fails_cleanly");
      CHECK(new_fails_cleanly != NULL && new_fails_cleanly() == 1);
    }
    CHECK(dlclose(handle) == 0);
  }
}

static void* exit_time_allocator(void* arg) {
  (void)arg;
  for (unsigned i = 0;; ++i) free(malloc(i % 3000));
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--exec-child") == 0) {
    check_allocator_in_use();
    free(malloc(100));
    return check_failures == 0 ? 0 : 15;
  }
  CHECK(argc > 1);
  if (argc < 2) return check_summary("robust_test");
  check_allocator_in_use();
  test_no_cxx_runtime_loaded();
  for (unsigned i = 0; i < kEarlyBlocks; ++i) {
    CHECK(check_pattern(g_early[i], 16u << (i % 12), i));
    free(g_early[i]);
  }
  test_thread_churn();
  test_thread_exit_destructors();
  test_fork(argv[0]);
  test_dlopen(argv[1]);
  g_late = malloc(5000);
  fill_pattern(g_late, 5000, 77);
  atexit(allocate_after_exit_began);
  /* exit() starts while these still allocate */
  pthread_t t;
  for (unsigned i = 0; i < 2; ++i) {
    pthread_create(&t, NULL, exit_time_allocator, NULL);
    pthread_detach(t);
  }
  sleep_ms(20);
  return check_summary("robust_test");
}
