// Go's own sync.Pool in the shapes of bench/micro/pool_micro.cpp (issue 14), so scripts/bench can
// put real sync.Pool figures next to object_pool's: get, write one byte, reset, put.
//
//	64B          a 64-byte struct, cleared on put (object_pool's reset hook clears it too)
//	4KiB_reset   4 KiB, only the 256-byte header cleared on put
//	4KiB_zeroed  a 4 KiB buffer cleared whole before reuse (Go's usual []byte pattern)
//
// threads:1 is one goroutine; threads:2 is b.RunParallel with two goroutines. Run with -cpu 2
// (GOMAXPROCS=2, one P per goroutine). ns/op is per get+put pair, over all goroutines (aggregate),
// like Google Benchmark's items_per_second in the C++ bench. Standard library only. Each shape
// has its own loop, written out: a reset passed as a func value (or through a generic type
// parameter) would not be inlined, and Go code that clears a buffer before Put gets it inlined.
// Go clears 4KiB_reset's 256 bytes with MOVUPS and DUFFZERO (16-byte stores) and 4KiB_zeroed's
// 4 KiB with REP STOSQ; the C++ shapes clear with the same instructions (see pool_micro.cpp's
// clear_front: GCC would otherwise expand the 256-byte clear into REP STOSQ, ~15 ns slower here).
package syncpool

import (
	"sync"
	"testing"
)

type small struct{ fields [8]uint64 }

type large struct {
	length int
	header [248]byte
	body   [4096 - 256]byte
}

type zeroed struct{ bytes [4096]byte }

func getSmall1(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(small) }}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pool.Get().(*small)
		p.fields[i&7] = uint64(i)
		*p = small{}
		pool.Put(p)
	}
}

func getSmall2(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(small) }}
	b.ReportAllocs()
	b.SetParallelism(1) // one goroutine per P: two with -cpu 2
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			p := pool.Get().(*small)
			p.fields[i&7] = uint64(i)
			*p = small{}
			pool.Put(p)
		}
	})
}

func getLarge1(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(large) }}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pool.Get().(*large)
		p.header[i&63] = byte(i)
		p.length = 0
		p.header = [248]byte{}
		pool.Put(p)
	}
}

func getLarge2(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(large) }}
	b.ReportAllocs()
	b.SetParallelism(1) // one goroutine per P: two with -cpu 2
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			p := pool.Get().(*large)
			p.header[i&63] = byte(i)
			p.length = 0
			p.header = [248]byte{}
			pool.Put(p)
		}
	})
}

func getZeroed1(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(zeroed) }}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := pool.Get().(*zeroed)
		p.bytes[i&63] = byte(i)
		p.bytes = [4096]byte{}
		pool.Put(p)
	}
}

func getZeroed2(b *testing.B) {
	pool := sync.Pool{New: func() any { return new(zeroed) }}
	b.ReportAllocs()
	b.SetParallelism(1) // one goroutine per P: two with -cpu 2
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			p := pool.Get().(*zeroed)
			p.bytes[i&63] = byte(i)
			p.bytes = [4096]byte{}
			pool.Put(p)
		}
	})
}

func BenchmarkSyncPool(b *testing.B) {
	for _, s := range []struct {
		name string
		one  func(*testing.B)
		two  func(*testing.B)
	}{
		{"64B", getSmall1, getSmall2},
		{"4KiB_reset", getLarge1, getLarge2},
		{"4KiB_zeroed", getZeroed1, getZeroed2},
	} {
		b.Run(s.name+"/threads:1", s.one)
		b.Run(s.name+"/threads:2", s.two)
	}
}
