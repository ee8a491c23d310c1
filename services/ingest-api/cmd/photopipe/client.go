package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// apiClient calls ingest-api.
type apiClient struct {
	base string
	key  string // sent as a bearer token when set
	http *http.Client
}

// apiError is an answer other than 2xx, with the API's code and message.
type apiError struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s %s: status %d", e.Method, e.Path, e.Status)
	}
	if e.Code == "" {
		return fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.Message)
	}
	return fmt.Sprintf("%s %s: %s (%s)", e.Method, e.Path, e.Message, e.Code)
}

// busy reports whether an error is worth asking again for: rate limited
// (429) or the service briefly unable to answer (502, 503, 504).
func busy(err error) bool {
	var e *apiError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retry calls f until it succeeds, fails other than busy, or has been
// busy 6 times (waiting 0.5 s, 1 s, 2 s ... in between).
func retry(ctx context.Context, f func() error) error {
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !busy(err) || attempt == 6 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// absolute turns a path of the API (/files/...) into a URL.
func (c *apiClient) absolute(path string) string {
	return strings.TrimRight(c.base, "/") + path
}

// do sends body as JSON (when not nil) and decodes a 2xx answer into out;
// other answers become *apiError carrying the API's message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", r, out)
}

// send sends a body of contentType and decodes a 2xx answer into out.
func (c *apiClient) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.absolute(path), body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Method: method, Path: path, Status: resp.StatusCode}
		var body struct{ Code, Error, Detail string }
		if json.Unmarshal(raw, &body) == nil {
			e.Code, e.Message = body.Code, body.Error
			if e.Message == "" {
				e.Message = body.Detail
			}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// upload sends one file to POST /photos/upload, streaming it, and returns
// the new photo's uuid and status (processing: an upload is requested at
// once).
func (c *apiClient) upload(ctx context.Context, file, renditions string) (id, status string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if renditions != "" {
				if err := mw.WriteField("renditions", renditions); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(file))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, f); err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var res createdPhotos
	err = c.send(ctx, http.MethodPost, "/photos/upload", mw.FormDataContentType(), pr, &res)
	// Unblock the writer if the request ended before reading the whole body.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return "", "", err
	}
	if len(res.Photos) != 1 {
		return "", "", fmt.Errorf("POST /photos/upload: %d photos for one file", len(res.Photos))
	}
	return res.Photos[0].UUID, res.Photos[0].Status, nil
}
