package client

import (
	"strings"
	"time"
)

// Status is a message's status.
type Status string

// The statuses of a message.
const (
	StatusQueued    Status = "queued"
	StatusSending   Status = "sending"
	StatusDeferred  Status = "deferred"
	StatusDelivered Status = "delivered"
	StatusPartial   Status = "partial"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Final reports whether nothing more will be tried for the message.
func (s Status) Final() bool {
	switch s {
	case StatusDelivered, StatusPartial, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Message is a message with each recipient's fate, as GET
// /v1/messages/{id} gives it (listings leave Attempts out).
type Message struct {
	ID             string            `json:"id"`
	Status         Status            `json:"status"`
	From           string            `json:"from"`
	Subject        string            `json:"subject"`
	Size           int64             `json:"size"`
	AttemptCount   int               `json:"attempt_count"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	NextAttemptAt  *time.Time        `json:"next_attempt_at,omitempty"`
	ExpiresAt      *time.Time        `json:"expires_at,omitempty"`
	Recipients     []Recipient       `json:"recipients"`
	Attempts       []Attempt         `json:"attempts,omitempty"`
	// History is what was learnt of the recipients after sending, oldest
	// first; like Attempts, Get gives it and listings leave it out.
	History []HistoryEvent `json:"history,omitempty"`
}

// HistoryEvent is one thing learnt about a recipient after sending.
type HistoryEvent struct {
	// Type is bounced (a report that delivery failed further on; the
	// recipient is then bounced), delayed or complained (reported as
	// spam).
	Type      string `json:"type"`
	Recipient string `json:"recipient"`
	// Code, EnhancedCode and Text are the diagnostic reported, if any.
	Code         int       `json:"code,omitempty"`
	EnhancedCode string    `json:"enhanced_code,omitempty"`
	Text         string    `json:"text,omitempty"`
	At           time.Time `json:"at"`
}

// Recipient is one recipient's status with its last SMTP reply.
type Recipient struct {
	Address string `json:"address"`
	// Status is pending, delivered, deferred, failed, bounced or
	// suppressed.
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	Code          int        `json:"code,omitempty"`
	EnhancedCode  string     `json:"enhanced_code,omitempty"`
	Text          string     `json:"text,omitempty"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
}

// Attempt is one delivery attempt with its redacted transcript.
type Attempt struct {
	Number     int        `json:"number"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Route      string     `json:"route,omitempty"`
	// Host is the server that handled the attempt, as host[address].
	Host string `json:"host,omitempty"`
	// Reply is the server's last reply to the message data, in one line.
	Reply      string `json:"reply,omitempty"`
	Error      string `json:"error,omitempty"`
	Transcript string `json:"transcript,omitempty"`
}

// ListPage is one page of a listing, newest first.
type ListPage struct {
	Messages []Message `json:"messages"`
	// NextCursor continues the listing (ListOptions.Cursor); empty on the
	// last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Content is a stored message as a program reads it (GET
// /v1/messages/{id}/content).
type Content struct {
	ID string `json:"id"`
	// Headers are the header fields in order, decoded; at most 100.
	Headers   []Header   `json:"headers"`
	From      *Address   `json:"from"`
	To        []Address  `json:"to"`
	Cc        []Address  `json:"cc"`
	ReplyTo   []Address  `json:"reply_to"`
	Subject   string     `json:"subject"`
	Date      *time.Time `json:"date,omitempty"`
	MessageID string     `json:"message_id,omitempty"`
	// Text and HTML are the bodies, decoded to UTF-8, each cut at 1 MiB
	// (TextTruncated, HTMLTruncated say so; Raw has it all).
	Text          string `json:"text"`
	TextTruncated bool   `json:"text_truncated"`
	HTML          string `json:"html"`
	HTMLTruncated bool   `json:"html_truncated"`
	Attachments   []Part `json:"attachments"`
	// Inline are the parts the HTML shows by Content-ID.
	Inline []Part `json:"inline"`
	// Links are the distinct URLs of the text and HTML bodies, in order.
	Links          []string `json:"links"`
	LinksTruncated bool     `json:"links_truncated"`
	// Problem says why part of the message could not be read, if so.
	Problem string `json:"problem,omitempty"`
}

// Header returns the value of the first header field named name (in any
// case), or "".
func (c *Content) Header(name string) string {
	for _, h := range c.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Header is one header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Address is a mailbox with its display name.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Part is an attachment or an inline part; Index is its n for
// Client.Attachment.
type Part struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	URL         string `json:"url"`
}

// Email is a message for outbox to compose (POST /v1/messages). From and
// a recipient are required, and so is Text, HTML or a Template.
type Email struct {
	From    string   `json:"from"`
	To      []string `json:"to,omitempty"`
	Cc      []string `json:"cc,omitempty"`
	Bcc     []string `json:"bcc,omitempty"`
	ReplyTo []string `json:"reply_to,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Text    string   `json:"text,omitempty"`
	HTML    string   `json:"html,omitempty"`
	// Headers are extra header fields.
	Headers     map[string]string `json:"headers,omitempty"`
	Attachments []Attachment      `json:"attachments,omitempty"`
	Template    *Template         `json:"template,omitempty"`
	// SendAt delays the first attempt; zero means now.
	SendAt time.Time `json:"-"`
	// DSN asks servers that offer DSN (RFC 3461) for delivery reports.
	DSN *DSN `json:"dsn,omitempty"`
	// Unsubscribe gives each recipient one-click unsubscribe links
	// (RFC 8058; the daemon needs --public-url); nil takes the
	// template's setting.
	Unsubscribe *bool `json:"unsubscribe,omitempty"`
	// IgnoreSuppressions sends to suppressed recipients too (a password
	// reset to an address that complained about newsletters).
	IgnoreSuppressions bool `json:"ignore_suppressions,omitempty"`
}

// DSN are the RFC 3461 parameters of a message.
type DSN struct {
	// Notify is when to report: success, failure and delay, or never
	// alone; empty leaves it to the servers.
	Notify []string `json:"notify,omitempty"`
	// Ret is what a failure report carries: full or hdrs.
	Ret string `json:"ret,omitempty"`
	// EnvID is quoted by the reports: printable ASCII, at most 100.
	EnvID string `json:"envid,omitempty"`
}

// Attachment is a file to attach; Content is sent in base64.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Content     []byte `json:"content"`
	// Inline parts are shown by the HTML as cid:ContentID.
	Inline    bool   `json:"inline,omitempty"`
	ContentID string `json:"content_id,omitempty"`
}

// Template names one of the daemon's templates and its data.
type Template struct {
	Name string         `json:"name"`
	Data map[string]any `json:"data,omitempty"`
}
