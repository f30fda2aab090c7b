// slabpool — whether the pools check their handles' and leases' lifetimes (not a public API).
//
// SLABPOOL_POOL_CHECKS, on by default when NDEBUG is not defined: a handle (object_pool) or lease
// (resource_pool) that outlives its pool aborts with a message instead of being undefined
// behaviour. Define it the same way in every translation unit of a program.
#pragma once

#ifndef SLABPOOL_POOL_CHECKS
#ifdef NDEBUG
#define SLABPOOL_POOL_CHECKS 0
#else
#define SLABPOOL_POOL_CHECKS 1
#endif
#endif
