/* Symbol visibility for slabpool's shared library: everything is hidden unless marked. */
#ifndef SLABPOOL_EXPORT_H
#define SLABPOOL_EXPORT_H

#if defined(__GNUC__)
#define SLABPOOL_API __attribute__((visibility("default")))
#else
#define SLABPOOL_API
#endif

#endif /* SLABPOOL_EXPORT_H */
