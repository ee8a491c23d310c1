module github.com/photopipe/photopipe/services/resizer

go 1.26.0

require (
	github.com/klippa-app/go-pdfium v1.20.0
	github.com/nfnt/resize v0.0.0-20180221191011-83c6a9932646
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/image v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect
