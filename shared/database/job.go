package database

import "time"

// JobStatus is a batch job's or group's state.
type JobStatus string

// Job statuses, as in the job_status enum.
const (
	JobOngoing   JobStatus = "ongoing"
	JobCompleted JobStatus = "completed"
	JobFailed    JobStatus = "failed"
)

// SkippedCode is the failure code of a job photo that was not processed
// because an earlier photo of its group failed.
const SkippedCode = "skipped"

// Job is a row of jobs: its counters are kept by the recorder.
type Job struct {
	UUID           string     `gorm:"column:uuid;primaryKey;type:uuid;default:gen_random_uuid()"`
	Status         JobStatus  `gorm:"column:status;type:job_status;default:ongoing"`
	Kind           string     `gorm:"column:kind"`
	CreatedAt      time.Time  `gorm:"column:created_at"`
	UpdatedAt      time.Time  `gorm:"column:updated_at"`
	CompletedAt    *time.Time `gorm:"column:completed_at"`
	Total          int        `gorm:"column:total"`
	Completed      int        `gorm:"column:completed"`
	Failed         int        `gorm:"column:failed"`
	Skipped        int        `gorm:"column:skipped"`
	GroupsTotal    int        `gorm:"column:groups_total"`
	GroupsFinished int        `gorm:"column:groups_finished"`
	GroupsFailed   int        `gorm:"column:groups_failed"`
	CallbackURL    *string    `gorm:"column:callback_url"`
}

// TableName is the jobs table.
func (Job) TableName() string { return "jobs" }

// JobGroup is a row of job_groups.
type JobGroup struct {
	JobUUID     string    `gorm:"column:job_uuid;primaryKey;type:uuid"`
	GroupKey    string    `gorm:"column:group_key;primaryKey"`
	Status      JobStatus `gorm:"column:status;type:job_status;default:ongoing"`
	Total       int       `gorm:"column:total"`
	Done        int       `gorm:"column:done"`
	Error       *string   `gorm:"column:error"`
	FailedPhoto *string   `gorm:"column:failed_photo;type:uuid"`
	VisitTime   *string   `gorm:"column:visit_time"`
}

// TableName is the job_groups table.
func (JobGroup) TableName() string { return "job_groups" }
