module github.com/photopipe/photopipe/tests/e2e

go 1.26.0
