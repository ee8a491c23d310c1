module github.com/photopipe/photopipe/services/downloader

go 1.26.0
