module github.com/photopipe/photopipe/services/resizer

go 1.26.0

require github.com/nfnt/resize v0.0.0-20180221191011-83c6a9932646
