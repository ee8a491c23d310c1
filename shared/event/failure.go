package event

import (
	"errors"
	"fmt"
)

// Failure is the error a stage returns when a photo cannot be processed:
// it becomes a PhotoFailed with Code and Message. Retryable failures (the
// source host was down) are retried a few times first.
type Failure struct {
	Code      string
	Message   string
	Retryable bool
}

func (f *Failure) Error() string { return f.Code + ": " + f.Message }

// Fail returns a permanent Failure with a formatted message.
func Fail(code, format string, args ...any) *Failure {
	return &Failure{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsFailure returns the Failure in err's chain, if any.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	ok := errors.As(err, &f)
	return f, ok
}
