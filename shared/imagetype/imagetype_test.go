package imagetype

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDetect(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		head string
		want Format
	}{
		{"jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF", JPEG},
		{"png", "\x89PNG\r\n\x1a\n\x00\x00", PNG},
		{"gif87", "GIF87a....", GIF},
		{"gif89", "GIF89a....", GIF},
		{"webp", "RIFF\x00\x00\x00\x00WEBPVP8 ", WebP},
		{"riff not webp", "RIFF\x00\x00\x00\x00WAVEfmt ", Unknown},
		{"bmp", "BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", BMP},
		{"tiff le", "II*\x00\x08\x00", TIFF},
		{"tiff be", "MM\x00*\x00\x00", TIFF},
		{"pdf", "%PDF-1.7\n", PDF},
		{"text", "hello world", Unknown},
		{"html", "<!doctype html>", Unknown},
		{"zip", "PK\x03\x04", Unknown},
		{"empty", "", Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Detect([]byte(tc.head)))
		})
	}
}

func TestDetectRealFiles(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]Format{
		"../../../shared/data/raft/1.jpg":                    JPEG,
		"../../../shared/data/raft/output.png.actually-jpeg": JPEG,
		"../../../shared/data/raft/Backend_Test_Raft.pdf":    PDF,
	} {
		b, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			t.Skipf("%s not present", file)
		}
		require.NoError(t, err)
		require.Equal(t, want, Detect(b[:SniffLen]), file)
	}
}

func TestContentTypeAndExtension(t *testing.T) {
	t.Parallel()
	require.Equal(t, "image/jpeg", JPEG.ContentType())
	require.Equal(t, "jpg", JPEG.Extension())
	require.Equal(t, "png", PNG.Extension())
	require.Equal(t, "application/pdf", PDF.ContentType())
}
