package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize is how much of a file Put holds in memory: files up to this
// size are one PUT, larger ones a multipart upload of parts this big. S3
// makes either visible only when it is complete, so writes stay atomic.
const s3PartSize = 16 << 20

// S3 is a Store in a bucket of an S3-compatible object store (AWS S3,
// MinIO, versitygw, Ceph RGW, ...), through minio-go.
type S3 struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
}

// NewS3 returns the store in cfg.Bucket. It waits up to cfg.ConnectTimeout
// for the server to answer, then fails if the bucket does not exist or the
// credentials are refused: a service should not start on storage it cannot
// use.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, secure, err := cfg.endpoint()
	if err != nil {
		return nil, fmt.Errorf("S3_ENDPOINT: %w", err)
	}
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	creds := credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	if cfg.AccessKeyID == "" {
		creds = credentials.NewIAM("")
	}
	lookup := minio.BucketLookupAuto
	switch cfg.PathStyle {
	case PathStyleOn:
		lookup = minio.BucketLookupPath
	case PathStyleOff:
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", cfg.Endpoint, err)
	}
	s := &S3{client: client, transport: transport, bucket: cfg.Bucket}
	if err := s.waitBucket(ctx, cfg); err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}
	return s, nil
}

// waitBucket checks that the bucket exists, retrying while the server does
// not answer (it may still be starting) but not when it refuses.
func (s *S3) waitBucket(ctx context.Context, cfg S3Config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		ok, err := s.client.BucketExists(ctx, s.bucket)
		switch {
		case err == nil && ok:
			return nil
		case err == nil:
			// versitygw also answers 404 (not 403) to an unknown access key.
			return fmt.Errorf("S3_BUCKET: bucket %q does not exist at %s, or S3_ACCESS_KEY_ID cannot see it", s.bucket, cfg.Endpoint)
		case minio.ToErrorResponse(err).Code != "":
			// The server answered: wrong credentials, region or permissions.
			return fmt.Errorf("S3_BUCKET: bucket %q at %s: %w", s.bucket, cfg.Endpoint, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to S3 at %s (S3_CONNECT_TIMEOUT %s): %w", cfg.Endpoint, cfg.ConnectTimeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// Close releases idle connections.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Put uploads everything r yields under key. A file up to s3PartSize is
// read fully first and sent as one PUT; a larger one goes as a multipart
// upload, which minio-go aborts when r fails. Either way the object appears
// only when it is complete.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	key, err := CleanKey(key)
	if err != nil {
		return 0, err
	}
	var head bytes.Buffer
	n, err := io.CopyN(&head, ctxReader{ctx, r}, s3PartSize+1)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{ContentType: contentType(key), PartSize: s3PartSize}
	if n <= s3PartSize {
		// A seekable body lets minio-go retry the PUT.
		if _, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(head.Bytes()), n, opts); err != nil {
			return 0, fmt.Errorf("put %s: %w", key, err)
		}
		return n, nil
	}
	body := &countingReader{r: io.MultiReader(&head, ctxReader{ctx, r})}
	if _, err := s.client.PutObject(ctx, s.bucket, key, body, -1, opts); err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return body.n, nil
}

// Open returns the object at key. Reads and seeks fetch what they need with
// ranged GETs, so serving a file streams it without holding it.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	key, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := obj.Stat() // sends the GET
	if err != nil {
		_ = obj.Close()
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NotFound" {
			return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return s3Object{Object: obj, info: Info{Key: key, Size: st.Size, ModTime: st.LastModified}}, nil
}

// Delete removes the object at key; S3 reports no error for a missing one.
func (s *S3) Delete(ctx context.Context, key string) error {
	key, err := CleanKey(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

type s3Object struct {
	*minio.Object
	info Info
}

func (o s3Object) Info() Info { return o.info }

// contentType is stored with the object for clients that read the bucket
// directly; photopipe itself never trusts it.
func contentType(key string) string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
