// Package callback is what ingest-api and the recorder agree on about
// callbacks: the JSON body POSTed to a photo's or job's callback URL when
// it reaches a final state, how that body is signed, and how the callback
// is queued (a callbacks row written in the transaction that makes its
// subject final, delivered later by the recorder's dispatcher).
package callback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers of every callback request.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// request body under the deployment's CALLBACK_SECRET.
	SignatureHeader = "X-Photopipe-Signature"
	// DeliveryHeader carries the callback's id: the same on every retry of
	// one callback, so a receiver can drop duplicates.
	DeliveryHeader = "X-Photopipe-Delivery"
	// AttemptHeader carries the number of this try, from 1.
	AttemptHeader = "X-Photopipe-Attempt"
)

// signaturePrefix names the algorithm in SignatureHeader.
const signaturePrefix = "sha256="

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header is body's signature under secret,
// comparing in constant time. Receivers do the same in their language.
func Verify(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	sum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sum, mac.Sum(nil))
}
