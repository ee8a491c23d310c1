package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// writeSizes records the size of every write.
type writeSizes struct {
	bytes.Buffer
	sizes []int
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.Buffer.Write(p)
}

func TestCopyChunkedWritesWholeChunks(t *testing.T) {
	t.Parallel()
	data := make([]byte, 2*chunkSize+1234)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cases := []struct {
		name string
		r    io.Reader
	}{
		{"short reads", iotest.HalfReader(bytes.NewReader(data))},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(data))},
		{"one read", bytes.NewReader(data)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w writeSizes
			n, err := copyChunked(&w, tc.r, make([]byte, chunkSize))
			require.NoError(t, err)
			require.EqualValues(t, len(data), n)
			require.Equal(t, data, w.Bytes())
			require.Equal(t, []int{chunkSize, chunkSize, 1234}, w.sizes)
		})
	}
}

func TestCopyChunkedEmpty(t *testing.T) {
	t.Parallel()
	var w writeSizes
	n, err := copyChunked(&w, bytes.NewReader(nil), make([]byte, chunkSize))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, w.sizes)
}

func TestCopyChunkedReturnsReadErrors(t *testing.T) {
	t.Parallel()
	// A body cut short (io.ErrUnexpectedEOF) is an error, not the end.
	for _, want := range []error{io.ErrUnexpectedEOF, errors.New("connection reset")} {
		t.Run(want.Error(), func(t *testing.T) {
			t.Parallel()
			r := io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(want))
			_, err := copyChunked(io.Discard, r, make([]byte, chunkSize))
			require.ErrorIs(t, err, want)
		})
	}
}

func TestLocalPutRefusesACutOffBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	r := io.MultiReader(bytes.NewReader(make([]byte, chunkSize+10)), iotest.ErrReader(io.ErrUnexpectedEOF))
	_, err = s.Put(t.Context(), "k/file", r)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	entries, err := os.ReadDir(filepath.Join(dir, "k"))
	require.NoError(t, err)
	require.Empty(t, entries, "neither the file nor a temporary file is left")
}

func TestCopyChunkedReturnsWriteErrors(t *testing.T) {
	t.Parallel()
	want := errors.New("disk full")
	_, err := copyChunked(failingWriter{want}, bytes.NewReader(make([]byte, 10)), make([]byte, chunkSize))
	require.ErrorIs(t, err, want)
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
