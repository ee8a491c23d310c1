// Package deploy holds static checks for the deployment artefacts at the
// repository root: docker-compose.yml (loaded with the compose-spec loader),
// deployments/Dockerfile and .dockerignore (parsed with BuildKit's parsers).
//
// The tests need neither a Docker engine nor network access:
//
//	cd tests/deploy && go test ./...
package deploy
