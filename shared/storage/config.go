package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/photopipe/photopipe/shared/envconfig"
)

// Backends a Config accepts (STORAGE_BACKEND).
const (
	BackendLocal = "local"
	BackendS3    = "s3"
)

// DefaultDir is the local backend's directory when STORAGE_DIR is not set.
const DefaultDir = "./var/storage"

// Path styles an S3Config accepts (S3_PATH_STYLE).
const (
	PathStyleAuto = "auto"  // path style, except virtual-hosted on AWS and other known hosts
	PathStyleOn   = "true"  // always https://endpoint/bucket/key (MinIO, versitygw, most gateways)
	PathStyleOff  = "false" // always https://bucket.endpoint/key
)

// Config selects the storage backend and holds its settings.
type Config struct {
	// Backend is BackendLocal or BackendS3 (STORAGE_BACKEND).
	Backend string
	// Dir is the local backend's directory (STORAGE_DIR).
	Dir string
	// CacheOriginals keeps the local backend's originals in the page cache
	// (STORAGE_CACHE_ORIGINALS; Local.CacheOriginals says why it is off).
	CacheOriginals bool
	// S3 configures the S3 backend.
	S3 S3Config
}

// S3Config configures the S3-compatible backend.
type S3Config struct {
	// Endpoint is the server's base URL, http:// or https://, without a
	// path: "https://s3.eu-west-1.amazonaws.com", "http://minio:9000"
	// (S3_ENDPOINT).
	Endpoint string
	// Region is the bucket's region (S3_REGION).
	Region string
	// Bucket holds every key; it must exist (S3_BUCKET).
	Bucket string
	// AccessKeyID and SecretAccessKey are static credentials
	// (S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY); SessionToken goes with
	// temporary ones (S3_SESSION_TOKEN). With neither key set, credentials
	// come from the environment's IAM role (EC2/ECS metadata, or a
	// Kubernetes service account's web identity token).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle is PathStyleAuto, PathStyleOn or PathStyleOff (S3_PATH_STYLE).
	PathStyle string
	// ConnectTimeout bounds how long start-up waits for the server to answer
	// (S3_CONNECT_TIMEOUT).
	ConnectTimeout time.Duration
}

// LoadConfig reads the storage settings; problems are recorded in r.
func LoadConfig(r *envconfig.Reader) Config {
	return Config{
		Backend:        strings.ToLower(r.String("STORAGE_BACKEND", BackendLocal)),
		Dir:            r.String("STORAGE_DIR", DefaultDir),
		CacheOriginals: r.Bool("STORAGE_CACHE_ORIGINALS", false),
		S3: S3Config{
			Endpoint:        r.String("S3_ENDPOINT", ""),
			Region:          r.String("S3_REGION", "us-east-1"),
			Bucket:          r.String("S3_BUCKET", ""),
			AccessKeyID:     r.String("S3_ACCESS_KEY_ID", ""),
			SecretAccessKey: r.String("S3_SECRET_ACCESS_KEY", ""),
			SessionToken:    r.String("S3_SESSION_TOKEN", ""),
			PathStyle:       pathStyle(r.String("S3_PATH_STYLE", PathStyleAuto)),
			ConnectTimeout:  r.Duration("S3_CONNECT_TIMEOUT", 60*time.Second),
		},
	}
}

// pathStyle accepts the usual spellings of a boolean besides "auto".
func pathStyle(v string) string {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on", "path":
		return PathStyleOn
	case "0", "false", "no", "off", "virtual", "virtual-hosted":
		return PathStyleOff
	case "", "auto":
		return PathStyleAuto
	}
	return v // Validate names it
}

// Validate reports every setting that cannot work. S3 settings are checked
// only when the S3 backend is chosen.
func (c Config) Validate() error {
	switch c.Backend {
	case BackendLocal:
		if c.Dir == "" {
			return errors.New("STORAGE_DIR: must not be empty")
		}
		return nil
	case BackendS3:
		return c.S3.Validate()
	}
	return fmt.Errorf("STORAGE_BACKEND: %q is neither %s nor %s", c.Backend, BackendLocal, BackendS3)
}

// Validate reports every S3 setting that cannot work.
func (c S3Config) Validate() error {
	var errs []error
	if _, _, err := c.endpoint(); err != nil {
		errs = append(errs, fmt.Errorf("S3_ENDPOINT: %w", err))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("S3_BUCKET: must be set for STORAGE_BACKEND=s3"))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY: set both (static credentials) or neither (IAM role)"))
	}
	switch c.PathStyle {
	case PathStyleAuto, PathStyleOn, PathStyleOff:
	default:
		errs = append(errs, fmt.Errorf("S3_PATH_STYLE: %q is not auto, true or false", c.PathStyle))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("S3_CONNECT_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}

// endpoint returns the endpoint's host[:port] and whether it uses TLS.
func (c S3Config) endpoint() (host string, secure bool, err error) {
	if c.Endpoint == "" {
		return "", false, errors.New("must be set for STORAGE_BACKEND=s3 (e.g. http://minio:9000 or https://s3.eu-west-1.amazonaws.com)")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("%q is not an http:// or https:// URL", c.Endpoint)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("%q must be a bare scheme://host[:port], without path, query or credentials", c.Endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// Backend is a Store that holds resources until it is closed.
type Backend interface {
	Store
	io.Closer
}

var (
	_ Backend = (*Local)(nil)
	_ Backend = (*S3)(nil)
)

// Open returns the backend cfg chooses: the local directory, or the S3
// bucket once its server has answered (waiting up to S3_CONNECT_TIMEOUT).
func Open(ctx context.Context, cfg Config) (Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend == BackendS3 {
		return NewS3(ctx, cfg.S3)
	}
	l, err := NewLocal(cfg.Dir)
	if err != nil {
		return nil, err
	}
	l.CacheOriginals = cfg.CacheOriginals
	return l, nil
}
