/* slabpool — C API.
 *
 * Every function is thread-safe. Memory from any sp_* allocation function may be freed from any
 * thread. Failures follow the C library's conventions: a null result with errno set.
 */
#ifndef SLABPOOL_SLABPOOL_H
#define SLABPOOL_SLABPOOL_H

#include <stddef.h>

#include "slabpool/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns at least `size` bytes aligned to 16, or NULL with errno = ENOMEM. sp_malloc(0) returns a
 * unique pointer that must be freed. */
SLABPOOL_API void* sp_malloc(size_t size);

/* Returns n*size zeroed bytes, or NULL with errno = ENOMEM (also when n*size overflows). */
SLABPOOL_API void* sp_calloc(size_t n, size_t size);

/* Resizes p keeping min(old, new) bytes; in place when the block is big enough and not too big.
 * sp_realloc(NULL, n) is sp_malloc(n); sp_realloc(p, 0) frees p and returns NULL (as glibc does).
 * On failure returns NULL with errno = ENOMEM and leaves p untouched. */
SLABPOOL_API void* sp_realloc(void* p, size_t size);

/* Frees a block from any sp_* allocation function; sp_free(NULL) does nothing. */
SLABPOOL_API void sp_free(void* p);

/* sp_free for a caller that knows the size it requested (C23 free_sized); the size is only a hint
 * in release builds and is checked in checked mode. */
SLABPOOL_API void sp_free_sized(void* p, size_t size);

/* Returns `size` bytes aligned to `alignment`, which must be a power of two no larger than
 * SP_MAX_ALIGNMENT: otherwise NULL with errno = EINVAL. NULL with ENOMEM when memory runs out. */
SLABPOOL_API void* sp_aligned_alloc(size_t alignment, size_t size);

/* Bytes usable at p (>= the size requested, all writable); 0 for NULL. */
SLABPOOL_API size_t sp_usable_size(const void* p);

/* Non-zero when p points into memory slabpool manages (any byte of a live or free block). Cheap:
 * one bitmap lookup, no lock. */
SLABPOOL_API int sp_owns(const void* p);

/* ---- trim: giving memory back to the OS -------------------------------------------------- */

/* Returns to the OS now everything idle: empty slabs of every thread (except the current slab of
 * other threads' size classes, which their owners may be using), empty segments, cached large
 * blocks. Returns the number of bytes given back. Called from inside a trim callback (or while
 * the thread is inside another pass) it does nothing and returns 0: passes never nest. */
SLABPOOL_API size_t sp_trim(void);

/* Runs one decay pass by the normal rules (what the background trimmer runs every interval):
 * only memory idle for longer than the trim delay goes back. Returns the bytes given back; 0 and
 * nothing done from inside a pass, like sp_trim. */
SLABPOOL_API size_t sp_trim_decay(void);

/* Registers callback(context) to run after every trim pass (background, slow-path, sp_trim and
 * sp_trim_decay alike), on the thread running the pass, with no slabpool or pool lock held: it
 * may allocate and free, and register or remove callbacks; it may run on two threads at once (the
 * trimmer and a caller of sp_trim), so it synchronises what it shares. A pass it starts itself
 * (sp_trim, or an allocation's slow path) is skipped. The function is always called with the
 * context it was registered with. This is the epoch hook object pools use to age their caches.
 * The callback returns non-zero while it still holds something later passes should age: the
 * background trimmer then keeps running passes instead of sleeping until the next slow path.
 * Returns 0, EINVAL for a null callback, or ENOMEM when the 16 slots are taken. */
SLABPOOL_API int sp_on_trim(int (*callback)(void* context), void* context);

/* Removes a registration made by sp_on_trim (same callback and context); returns 0 or ENOENT.
 * When it returns, no pass runs the callback any more, so the context may be freed: it waits for
 * calls in progress on other threads to finish (do not call it while holding a lock the callback
 * takes). Called from inside a trim callback it does not wait. */
SLABPOOL_API int sp_on_trim_remove(int (*callback)(void* context), void* context);

/* Replaces the millisecond clock the decay rules read (NULL restores the real monotonic clock).
 * For tests: with the background trimmer off, a fake clock makes decay deterministic. */
SLABPOOL_API void sp_set_clock(unsigned long long (*now_ms)(void));

/* ---- options ------------------------------------------------------------------------------ */
typedef enum sp_option {
  SP_OPTION_TRIM_DELAY_MS,      /* SLABPOOL_TRIM_DELAY_MS: idle time before memory goes back */
  SP_OPTION_TRIM_INTERVAL_MS,   /* SLABPOOL_TRIM_INTERVAL_MS: period of decay passes */
  SP_OPTION_BACKGROUND_TRIM,    /* SLABPOOL_BACKGROUND_TRIM: 1 runs a trimmer thread, 0 not */
  SP_OPTION_MEMORY_LIMIT,       /* SLABPOOL_MEMORY_LIMIT: above it, trimming ignores the delay */
  SP_OPTION_THREAD_CACHE_BYTES, /* SLABPOOL_THREAD_CACHE: empty-slab bytes a thread may keep */
  SP_OPTION_CACHE_BYTES,        /* SLABPOOL_CACHE: free resident bytes kept process-wide */
  SP_OPTION_STATS,              /* SLABPOOL_STATS: 1 (text) or 2 (JSON) prints stats at exit */
  SP_OPTION_VERBOSE,            /* SLABPOOL_VERBOSE: 1 reports trims and warnings on stderr */
  SP_OPTION_CHECKED,            /* SLABPOOL_CHECKED: 1 verifies every free (before 1st alloc) */
  SP_OPTION_COUNT_
} sp_option;

/* Current value of option `option` (an SP_OPTION_* value), after the environment was read;
 * -1 for an unknown option. */
SLABPOOL_API long long sp_option_get(int option);

/* Sets option `option` (an SP_OPTION_* value); returns 0, or EINVAL (value kept) when the option
 * or the value is out of range, or SP_OPTION_CHECKED changes after the first allocation. */
SLABPOOL_API int sp_option_set(int option, long long value);

/* ---- statistics ----------------------------------------------------------------------------
 * Gathered on read from every thread's heap (no counter sits on the allocation fast path). */
#define SP_CLASS_COUNT 67

typedef struct sp_class_stats {
  size_t block_size;  /* bytes per block of this class */
  size_t slabs;       /* slabs of this class held by threads (or awaiting adoption) */
  size_t live_blocks; /* blocks handed out and not yet freed */
  size_t free_blocks; /* free blocks inside those slabs */
  size_t resident;    /* bytes of those slabs touched so far: blocks carved, to whole pages */
  size_t empty_slabs; /* of the slabs, those with no live block (kept until the decay) */
} sp_class_stats;

typedef struct sp_stats {
  size_t allocated;       /* bytes in live blocks (small blocks by class size, large by span) */
  size_t active;          /* bytes of slabs and large blocks in use */
  size_t resident;        /* slabpool's upper estimate of its resident bytes */
  size_t mapped;          /* bytes mapped from the OS */
  size_t cached;          /* free but resident bytes kept for reuse (empty spans, huge cache) */
  size_t returned;        /* bytes given back to the OS since start (decommitted or unmapped) */
  size_t trims;           /* decay passes run */
  size_t threads;         /* live thread heaps */
  size_t abandoned_slabs; /* slabs of exited threads not yet adopted */
  size_t process_rss;     /* the whole process's resident bytes, from /proc/self/statm */
  /* Where slabpool's resident memory sits (upper estimates, like `resident`): */
  size_t slab_resident;       /* touched bytes of every slab (the sum of classes[].resident) */
  size_t empty_slab_bytes;    /* of which empty slabs threads still hold (until the decay) */
  size_t abandoned_resident;  /* of which slabs of exited threads awaiting adoption */
  size_t thread_resident_max; /* the most slab memory one thread's heap holds */
  size_t span_cache;          /* free spans kept resident in the segment pool (SLABPOOL_CACHE) */
  size_t huge_cache;          /* freed huge blocks kept resident for reuse (SLABPOOL_CACHE) */
  size_t large_resident;      /* large and huge blocks in use */
  sp_class_stats classes[SP_CLASS_COUNT];
} sp_stats;

/* Fills *out with a consistent-enough snapshot (each heap is read under its lock). */
SLABPOOL_API void sp_stats_get(sp_stats* out);

/* Writes the stats as text (json = 0) or one JSON object (json != 0) into buffer, NUL-terminated
 * and truncated to size; returns the length the full text needs (like snprintf). */
SLABPOOL_API size_t sp_stats_format(char* buffer, size_t size, int json);

/* Writes the stats to file descriptor fd (e.g. 2 for stderr) without allocating. */
SLABPOOL_API void sp_stats_print(int fd, int json);

/* The largest alignment sp_aligned_alloc accepts (half a segment). */
#define SP_MAX_ALIGNMENT ((size_t)2 << 20)

/* ---- stats sections: adapters' figures in the stats output ------------------------------
 * A section writer appends its own figures to sp_stats_format / sp_stats_print: in JSON mode one
 * JSON value (stored under "sections":{"<name>": value}), in text mode whole lines. It has
 * snprintf's contract: writes at most `size` bytes (NUL included) and returns the length the full
 * text needs. It runs on the thread formatting the stats with no slabpool lock held. */
typedef size_t (*sp_stats_writer)(char* buffer, size_t size, int json, void* context);

/* Adds a section named `name` (a string that must stay valid until removed). Never allocates
 * (8 fixed slots). Returns 0, EINVAL for a null name or writer, or ENOMEM when the slots are
 * taken. */
SLABPOOL_API int sp_stats_add_section(const char* name, sp_stats_writer writer, void* context);

/* Removes the section added with the same writer and context; when it returns the writer is not
 * running and will not be called again (so `context` may be freed). Must not be called from a
 * writer. Returns 0 or ENOENT. */
SLABPOOL_API int sp_stats_remove_section(sp_stats_writer writer, void* context);

#ifdef __cplusplus
}
#endif

#endif /* SLABPOOL_SLABPOOL_H */
