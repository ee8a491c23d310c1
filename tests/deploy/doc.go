// Package deploy holds static checks for the deployment artefacts at the
// repository root: docker-compose.yml (loaded with the compose-spec loader,
// with and without its s3 profile), deployments/Dockerfile and
// .dockerignore (parsed with BuildKit's parsers) and the Kubernetes example
// in deployments/k8s (every document decoded strictly into the k8s.io/api
// types, cross-checked against the settings and queues the services'
// sources define).
//
// The tests need neither a Docker engine, a cluster nor network access:
//
//	cd tests/deploy && go test ./...
package deploy
