package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLocalPut stores 8 KB files (a thumbnail) from 8 goroutines, as
// the downloader's and resizer's workers do: the cost of the temp file,
// fsync and rename per stored file.
func BenchmarkLocalPut(b *testing.B) {
	l, err := NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := bytes.Repeat([]byte{7}, 8<<10)
	var n atomic.Int64
	b.SetParallelism(4) // x GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := l.Put(context.Background(), fmt.Sprintf("thumbnails/p%d/thumb.jpg", i), bytes.NewReader(data)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLocalPutLarge stores a 6.8 MB file (an 18 MP JPEG) as the
// downloader does, from a source that yields at most 64 KiB per read (a
// socket), with write chunks of several sizes: chunkSize is chosen from
// its cpu-ms/op. The files are deleted as they go, so the page cache
// recycles its pages as a long-running store's would.
func BenchmarkLocalPutLarge(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 6802697/16)
	for _, size := range []int{32 << 10, 128 << 10, chunkSize, 1 << 20} {
		b.Run(fmt.Sprintf("chunk=%dKiB", size>>10), func(b *testing.B) {
			l, err := NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			buf := make([]byte, size)
			b.SetBytes(int64(len(data)))
			cpu0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprintf("originals/p%d/large.jpg", i)
				if _, err := l.put(context.Background(), key, &socketReader{data: data}, buf); err != nil {
					b.Fatal(err)
				}
				if err := l.Delete(context.Background(), key); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// socketReader yields data at most 64 KiB per read.
type socketReader struct{ data []byte }

func (r *socketReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
