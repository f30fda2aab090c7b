/* slabpool — hooks for tests. Not for production use: they change how the allocator behaves. */
#ifndef SLABPOOL_TESTING_H
#define SLABPOOL_TESTING_H

#include "slabpool/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Makes the next `count` OS mappings slabpool asks for fail, as if mmap returned ENOMEM
 * (0 stops it). Lets tests drive every out-of-memory path of the slow paths. */
SLABPOOL_API void sp_testing_fail_maps(long count);

#ifdef __cplusplus
}
#endif

#endif /* SLABPOOL_TESTING_H */
