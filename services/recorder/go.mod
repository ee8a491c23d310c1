module github.com/photopipe/photopipe/services/recorder

go 1.26.0
