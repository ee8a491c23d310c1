package database

import "time"

// Status is a photo's place in its life: pending until processing is
// requested and picked up, processing, then completed or failed.
type Status string

// Statuses, as in the photo_status enum.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// Rank orders statuses within one attempt; the recorder never moves a
// photo to a lower (attempt, rank).
func (s Status) Rank() int {
	switch s {
	case StatusProcessing:
		return 1
	case StatusCompleted, StatusFailed:
		return 2
	default:
		return 0
	}
}

// Photo is a row of photos.
type Photo struct {
	UUID             string     `gorm:"column:uuid;primaryKey;type:uuid;default:gen_random_uuid()"`
	URL              string     `gorm:"column:url"`
	Status           Status     `gorm:"column:status;type:photo_status;default:pending"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	UpdatedAt        time.Time  `gorm:"column:updated_at"`
	Attempt          int        `gorm:"column:attempt"`
	StatusAttempt    int        `gorm:"column:status_attempt"`
	Renditions       []string   `gorm:"column:renditions;type:jsonb;serializer:json"`
	Filename         string     `gorm:"column:filename"`
	OriginalKey      *string    `gorm:"column:original_key"`
	ContentType      *string    `gorm:"column:content_type"`
	Bytes            *int64     `gorm:"column:bytes"`
	Width            *int       `gorm:"column:width"`
	Height           *int       `gorm:"column:height"`
	Pages            *int       `gorm:"column:pages"`
	FailureStage     *string    `gorm:"column:failure_stage"`
	FailureCode      *string    `gorm:"column:failure_code"`
	FailureMessage   *string    `gorm:"column:failure_message"`
	FailureRetryable *bool      `gorm:"column:failure_retryable"`
	CompletedAt      *time.Time `gorm:"column:completed_at"`

	DeadLetterService *string    `gorm:"column:dead_letter_service"`
	DeadLetterQueue   *string    `gorm:"column:dead_letter_queue"`
	DeadLetterReason  *string    `gorm:"column:dead_letter_reason"`
	DeadLetteredAt    *time.Time `gorm:"column:dead_lettered_at"`

	// Batch jobs: the job and group (a store) the photo belongs to, and its
	// place in the group, which is processed in that order.
	JobUUID  *string `gorm:"column:job_uuid;type:uuid"`
	GroupKey *string `gorm:"column:group_key"`
	GroupSeq *int    `gorm:"column:group_seq"`

	// CallbackURL receives a signed POST when an attempt of the photo ends.
	CallbackURL *string `gorm:"column:callback_url"`

	Thumbnails []Thumbnail `gorm:"foreignKey:PhotoUUID;references:UUID"`
}

// TableName is the photos table.
func (Photo) TableName() string { return "photos" }

// Thumbnail is a row of photo_thumbnails: one stored rendition (of one page).
type Thumbnail struct {
	UUID      string    `gorm:"column:uuid;primaryKey;type:uuid;default:gen_random_uuid()"`
	PhotoUUID string    `gorm:"column:photo_uuid;type:uuid"`
	Rendition string    `gorm:"column:rendition"`
	Page      int       `gorm:"column:page"`
	Width     int       `gorm:"column:width"`
	Height    int       `gorm:"column:height"`
	URL       string    `gorm:"column:url"`
	Format    string    `gorm:"column:format"`
	Bytes     int64     `gorm:"column:bytes"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

// TableName is the photo_thumbnails table.
func (Thumbnail) TableName() string { return "photo_thumbnails" }

// OutboxMessage is a row of outbox: an event waiting to be published.
type OutboxMessage struct {
	ID        int64             `gorm:"column:id;primaryKey;autoIncrement"`
	Topic     string            `gorm:"column:topic"`
	MessageID string            `gorm:"column:message_id"`
	Payload   []byte            `gorm:"column:payload"`
	Metadata  map[string]string `gorm:"column:metadata;type:jsonb;serializer:json"`
	CreatedAt time.Time         `gorm:"column:created_at"`
}

// TableName is the outbox table.
func (OutboxMessage) TableName() string { return "outbox" }
