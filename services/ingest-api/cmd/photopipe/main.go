// Command photopipe is the operator's and developer's command line for a
// running photopipe: it talks to ingest-api over HTTP.
//
//	photopipe [--api URL] submit [-r RENDITIONS] [-f LIST|-] [FILE|FOLDER|URL]...
//	photopipe [--api URL] dlq list [SERVICE]
//	photopipe [--api URL] dlq replay SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
//	photopipe [--api URL] dlq discard SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
//
// submit uploads files (a folder: every file in it) and registers URLs,
// shows a progress bar until every photo is completed or failed, prints
// where the thumbnails are and exits 1 if any failed. The API defaults to
// $PHOTOPIPE_API or http://127.0.0.1:8080; the key in $PHOTOPIPE_API_KEY
// (an API key for submit, an admin key for dlq) is sent as a bearer token.
package main

import (
	"context"
	"errors"
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
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, http.DefaultClient); err != nil {
		fmt.Fprintln(os.Stderr, "photopipe:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  photopipe [--api URL] submit [-r RENDITIONS] [-f LIST|-]... [--timeout 30m] [--progress auto|bar|plain] [FILE|FOLDER|URL]...
  photopipe [--api URL] dlq list [SERVICE]
  photopipe [--api URL] dlq replay SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
  photopipe [--api URL] dlq discard SERVICE (--all | --id MESSAGE_ID... | --photo PHOTO_ID...)
submit: files are uploaded, URLs registered; -f reads one file, folder or URL a line (- for standard
input); it waits until every photo is final, prints where the thumbnails are and exits 1 if any failed.
dlq services: downloader, resizer, recorder. The API defaults to $PHOTOPIPE_API or http://127.0.0.1:8080;
the key is read from $PHOTOPIPE_API_KEY (an API key for submit, an admin key from ADMIN_API_KEYS for dlq)`

// usageError is a command line that cannot be understood.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usage }

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, out io.Writer, client *http.Client) error {
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
	var err error
	switch args[0] {
	case "dlq":
		err = dlq(ctx, c, args[1:], out)
	case "submit":
		err = submit(ctx, c, args[1:], stdin, out)
	case "help", "-h", "--help":
		err = errHelp
	default:
		err = usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
	if errors.Is(err, errHelp) {
		_, err = fmt.Fprintln(out, usage)
	}
	return err
}

// errHelp asks for the usage on standard output (-h, --help), not an error.
var errHelp = errors.New("help")
