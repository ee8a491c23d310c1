package storage

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
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
