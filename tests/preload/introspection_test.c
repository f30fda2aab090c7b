/* glibc's introspection functions tell the truth about the allocator in use: mallinfo2/mallinfo
 * count the bytes this program holds and drop when it frees them, malloc_stats and malloc_info
 * describe the heap that serves malloc (slabpool's under the shim), malloc_info writes well-formed
 * XML, and mallopt says which settings it applied. The same figures must hold on plain glibc. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

enum { kBlocks = 1024, kBlockSize = 1024, kLive = kBlocks * kBlockSize };

/* The program's own live blocks: 1 MiB in 1 KiB blocks, below glibc's mmap threshold so that
 * glibc counts them in its arena too. Allocated and freed on the main thread (glibc's mallinfo
 * describes its main arena). */
static void* g_blocks[kBlocks];

static void allocate_live(void) {
  for (int i = 0; i < kBlocks; ++i) {
    g_blocks[i] = malloc(kBlockSize);
    memset(g_blocks[i], i, kBlockSize);
  }
}

static void free_live(void) {
  for (int i = 0; i < kBlocks; ++i) free(g_blocks[i]);
}

/* Reads all of a file into a malloc'd NUL-terminated string. */
static char* slurp(FILE* f) {
  rewind(f);
  size_t size = 0;
  size_t cap = 4096;
  char* text = malloc(cap);
  size_t n;
  while ((n = fread(text + size, 1, cap - size - 1, f)) > 0) {
    size += n;
    if (cap - size - 1 == 0) text = realloc(text, cap *= 2);
  }
  text[size] = '\0';
  return text;
}

/* A small XML well-formedness check: one root element, every tag closed in order, attribute
 * values quoted, nothing but whitespace outside the root. Enough for malloc_info's documents. */
static int well_formed_xml(const char* s) {
  char stack[32][64];
  int depth = 0;
  int roots = 0;
  while (*s != '\0') {
    if (*s != '<') {
      if (depth == 0 && *s != ' ' && *s != '\n' && *s != '\t' && *s != '\r') return 0;
      ++s;
      continue;
    }
    ++s;
    if (*s == '?') { /* an XML declaration */
      const char* end = strstr(s, "?>");
      if (end == NULL) return 0;
      s = end + 2;
      continue;
    }
    const int closing = *s == '/';
    if (closing) ++s;
    char name[64];
    size_t len = 0;
    while (*s != '\0' && *s != ' ' && *s != '>' && *s != '/' && *s != '\n') {
      if (len + 1 >= sizeof(name)) return 0;
      name[len++] = *s++;
    }
    name[len] = '\0';
    if (len == 0) return 0;
    int self_closing = 0;
    for (;;) { /* attributes: name="value" */
      while (*s == ' ' || *s == '\n') ++s;
      if (*s == '>') {
        ++s;
        break;
      }
      if (s[0] == '/' && s[1] == '>') {
        s += 2;
        self_closing = 1;
        break;
      }
      if (closing) return 0;
      while (*s != '\0' && *s != '=' && *s != ' ' && *s != '>') ++s;
      if (s[0] != '=' || s[1] != '"') return 0;
      const char* end = strchr(s + 2, '"');
      if (end == NULL || memchr(s + 2, '<', (size_t)(end - s - 2)) != NULL) return 0;
      s = end + 1;
    }
    if (closing) {
      if (depth == 0 || strcmp(stack[depth - 1], name) != 0) return 0;
      --depth;
    } else if (!self_closing) {
      if (depth == 0) ++roots;
      if (depth == 32) return 0;
      strcpy(stack[depth++], name);
    } else if (depth == 0) {
      ++roots;
    }
  }
  return depth == 0 && roots == 1;
}

/* The value of attribute `attribute` of the first element whose text contains `needle` (e.g.
 * "<system type=\"current\"" or " to=\"1024\""), or -1. */
static long long xml_figure(const char* xml, const char* needle, const char* attribute) {
  const char* at = strstr(xml, needle);
  if (at == NULL) return -1;
  const char* start = at;
  while (start > xml && *start != '<') --start;
  const char* end = strchr(at, '>');
  char key[64];
  snprintf(key, sizeof(key), " %s=\"", attribute);
  const char* value = strstr(start, key);
  if (value == NULL || end == NULL || value > end) return -1;
  return strtoll(value + strlen(key), NULL, 10);
}

/* Checked mode (SLABPOOL_CHECKED=1) under the shim keeps freed blocks in a quarantine, where they
 * still count as in use, and gives each block a trailer, which moves 1 KiB requests to a larger
 * class: the checks that depend on either are left out then. */
static int plain_mode(void) {
  const char* checked = getenv("SLABPOOL_CHECKED");
  return !expect_shim() || checked == NULL || strcmp(checked, "1") != 0;
}

static void check_mallinfo2(void) {
  const struct mallinfo2 before = mallinfo2();
  allocate_live();
  const struct mallinfo2 during = mallinfo2();
  free_live();
  const struct mallinfo2 after = mallinfo2();

  CHECK(during.uordblks >= kLive);
  CHECK(during.uordblks >= before.uordblks + kLive);
  if (plain_mode()) CHECK(after.uordblks + kLive <= during.uordblks);
  CHECK(during.arena >= during.uordblks);
  /* glibc's invariant: the arena is what is in use plus what is free. */
  CHECK(during.arena == during.uordblks + during.fordblks);
  CHECK(after.arena == after.uordblks + after.fordblks);
  if (expect_shim()) { /* every block is mapped memory to slabpool: no mmapped chunks */
    CHECK(during.hblks == 0 && during.hblkhd == 0 && during.smblks == 0 && during.usmblks == 0);
  }
}

/* The int version, deprecated in glibc's headers but still called by old programs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_mallinfo(void) {
  allocate_live();
  const struct mallinfo during = mallinfo();
  free_live();
  const struct mallinfo after = mallinfo();
  CHECK(during.uordblks >= kLive);
  if (plain_mode()) CHECK(after.uordblks + kLive <= during.uordblks);
  CHECK(during.arena == during.uordblks + during.fordblks);
}
#pragma GCC diagnostic pop

/* malloc_stats prints on stderr: capture fd 2 in a temporary file. */
static void check_malloc_stats(void) {
  allocate_live();
  FILE* capture = tmpfile();
  CHECK(capture != NULL);
  if (capture == NULL) return;
  fflush(stderr);
  const int saved = dup(2);
  dup2(fileno(capture), 2);
  malloc_stats();
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  free_live();
  char* text = slurp(capture);
  fclose(capture);
  if (expect_shim()) {
    CHECK(strstr(text, "slabpool stats") != NULL);
    /* The 1 KiB class holds this program's 1024 live blocks. */
    const char* row = strstr(text, "\n        1024 ");
    CHECK(row != NULL || !plain_mode());
    if (row != NULL && plain_mode()) {
      unsigned long long slabs = 0, live = 0;
      /* class, slabs, empty slabs, live blocks, ... */
      CHECK(sscanf(row, " %*u %llu %*u %llu", &slabs, &live) == 2 && live >= kBlocks && slabs >= 1);
    }
  } else {
    CHECK(strstr(text, "system bytes") != NULL && strstr(text, "in use bytes") != NULL);
  }
  free(text);
}

static void check_malloc_info(void) {
  allocate_live();
  FILE* out = tmpfile();
  CHECK(out != NULL);
  if (out == NULL) return;
  CHECK(malloc_info(0, out) == 0);
  free_live();
  char* xml = slurp(out);
  fclose(out);
  CHECK(well_formed_xml(xml));
  if (!well_formed_xml(xml)) fprintf(stderr, "malloc_info wrote:\n%s\n", xml);
  CHECK(strncmp(xml, "<malloc version=\"1\"", 19) == 0);
  /* Memory obtained from the system covers the live megabyte, in either allocator's document. */
  CHECK(xml_figure(xml, "<system type=\"current\"", "size") >= kLive);
  if (expect_shim()) {
    CHECK(strstr(xml, "allocator=\"slabpool\"") != NULL);
    CHECK(xml_figure(xml, "<slabpool ", "allocated") >= kLive);
    CHECK(xml_figure(xml, "<slabpool ", "mapped") >= xml_figure(xml, "<slabpool ", "allocated"));
    if (plain_mode()) CHECK(xml_figure(xml, " to=\"1024\"", "live") >= kBlocks);
    CHECK(xml_figure(xml, "<option name=\"SLABPOOL_CACHE\"", "value") >= 0);
  }
  free(xml);

  /* Any other options value: EINVAL, as glibc, and nothing written. */
  FILE* none = tmpfile();
  CHECK(malloc_info(1, none) == EINVAL);
  CHECK(ftell(none) == 0);
  fclose(none);
}

static long long cache_option(void) {
  FILE* out = tmpfile();
  if (out == NULL) return -1;
  malloc_info(0, out);
  char* xml = slurp(out);
  fclose(out);
  const long long value = xml_figure(xml, "<option name=\"SLABPOOL_CACHE\"", "value");
  free(xml);
  return value;
}

static void check_mallopt(void) {
  /* Both allocators honour the trim threshold; under the shim it is SLABPOOL_CACHE. */
  CHECK(mallopt(M_TRIM_THRESHOLD, 8 << 20) == 1);
  if (expect_shim()) CHECK(cache_option() == 8 << 20);
  CHECK(mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1);
  if (expect_shim()) CHECK(cache_option() == 64 << 20);
  /* What slabpool has no equivalent for is refused (0); glibc applies it (1). */
  const int honoured = expect_shim() ? 0 : 1;
  CHECK(mallopt(M_ARENA_MAX, 2) == honoured);
  CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == honoured);
  CHECK(mallopt(M_TOP_PAD, 1 << 16) == honoured);
  CHECK(mallopt(M_PERTURB, 0) == honoured);
  CHECK(mallopt(M_MXFAST, 64) == honoured);
  /* glibc even answers 1 for a parameter it does not know; the shim says it applied nothing. */
  CHECK(mallopt(12345, 1) == honoured);
}

int main(void) {
  check_allocator_in_use();
  check_mallinfo2();
  check_mallinfo();
  check_malloc_stats();
  check_malloc_info();
  check_mallopt();
  return check_summary("introspection_test");
}
