// Command photopipe is the operator's and developer's command line for a
// running photopipe: it talks to ingest-api over HTTP.
//
//	photopipe [--api URL] dlq list [SERVICE]
//	photopipe [--api URL] dlq replay SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
//	photopipe [--api URL] dlq discard SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
//
// The API defaults to $PHOTOPIPE_API or http://127.0.0.1:8080; an admin key
// in $PHOTOPIPE_API_KEY is sent as a bearer token.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, http.DefaultClient); err != nil {
		fmt.Fprintln(os.Stderr, "photopipe:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  photopipe [--api URL] dlq list [SERVICE]
  photopipe [--api URL] dlq replay SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
  photopipe [--api URL] dlq discard SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
services: downloader, resizer, recorder; the API defaults to $PHOTOPIPE_API or http://127.0.0.1:8080;
an admin key (ADMIN_API_KEYS) is read from $PHOTOPIPE_API_KEY`

// usageError is a command line that cannot be understood.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usage }

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer, client *http.Client) error {
	api := getenv("PHOTOPIPE_API")
	if api == "" {
		api = "http://127.0.0.1:8080"
	}
	for len(args) > 0 && (args[0] == "--api" || args[0] == "-api") {
		if len(args) < 2 {
			return usageError{"--api needs a URL"}
		}
		api, args = args[1], args[2:]
	}
	c := &apiClient{base: api, key: getenv("PHOTOPIPE_API_KEY"), http: client}
	if len(args) == 0 {
		return usageError{"no command"}
	}
	switch args[0] {
	case "dlq":
		return dlq(ctx, c, args[1:], out)
	case "help", "-h", "--help":
		_, err := fmt.Fprintln(out, usage)
		return err
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}
