package database

import (
	"encoding/json"
	"time"
)

// CallbackStatus is where a callback's delivery stands.
type CallbackStatus string

// Callback statuses, as in the callbacks.status check.
const (
	CallbackPending   CallbackStatus = "pending"
	CallbackDelivered CallbackStatus = "delivered"
	CallbackFailed    CallbackStatus = "failed"
)

// Callback kinds: what a callback reports on.
const (
	CallbackKindPhoto = "photo"
	CallbackKindJob   = "job"
)

// Callback is a row of callbacks: one signed POST to send about a photo
// attempt or a job that reached a final state, and where its delivery
// stands.
type Callback struct {
	ID             string          `gorm:"column:id;primaryKey;type:uuid;default:gen_random_uuid()"`
	Kind           string          `gorm:"column:kind"`
	SubjectID      string          `gorm:"column:subject_id;type:uuid"`
	SubjectAttempt int             `gorm:"column:subject_attempt"`
	URL            string          `gorm:"column:url"`
	Payload        json.RawMessage `gorm:"column:payload;type:jsonb"`
	Status         CallbackStatus  `gorm:"column:status"`
	Attempts       int             `gorm:"column:attempts"`
	NextAttemptAt  time.Time       `gorm:"column:next_attempt_at"`
	LockedUntil    *time.Time      `gorm:"column:locked_until"`
	LastError      *string         `gorm:"column:last_error"`
	CreatedAt      time.Time       `gorm:"column:created_at"`
	UpdatedAt      time.Time       `gorm:"column:updated_at"`
	FinishedAt     *time.Time      `gorm:"column:finished_at"`
}

// TableName is the callbacks table.
func (Callback) TableName() string { return "callbacks" }

// CallbackAttempt is a row of callback_attempts: one try at delivering a
// callback.
type CallbackAttempt struct {
	CallbackID string    `gorm:"column:callback_id;primaryKey;type:uuid"`
	Attempt    int       `gorm:"column:attempt;primaryKey"`
	StartedAt  time.Time `gorm:"column:started_at"`
	DurationMS int64     `gorm:"column:duration_ms"`
	StatusCode *int      `gorm:"column:status_code"`
	Error      *string   `gorm:"column:error"`
}

// TableName is the callback_attempts table.
func (CallbackAttempt) TableName() string { return "callback_attempts" }
