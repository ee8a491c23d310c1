//go:build !linux

package storage

import "os"

// Elsewhere than on Linux the page-cache hints do nothing.

func dropCached(*os.File) {}

func readSequentially(*os.File) {}

func readAhead(*os.File) {}
