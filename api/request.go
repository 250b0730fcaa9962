package api

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"reflect"
)

// sendRequest is the JSON body of POST /v1/messages.
type sendRequest struct {
	From        string         `json:"from"`
	To          addrList       `json:"to"`
	Cc          addrList       `json:"cc"`
	Bcc         addrList       `json:"bcc"`
	ReplyTo     addrList       `json:"reply_to"`
	Subject     string         `json:"subject"`
	Text        string         `json:"text"`
	HTML        string         `json:"html"`
	Headers     headerList     `json:"headers"`
	Attachments []attachment   `json:"-"` // streamed: see decodeSend
	Template    *templateField `json:"template"`
	SendAt      string         `json:"send_at"`
	// DSN, Unsubscribe and IgnoreSuppressions: see deliverability.go.
	DSN                *dsnField `json:"dsn"`
	Unsubscribe        *bool     `json:"unsubscribe"`
	IgnoreSuppressions bool      `json:"ignore_suppressions"`
}

type templateField struct {
	Name string         `json:"name"`
	Data map[string]any `json:"data"`
}

// UnmarshalJSON refuses unknown keys, naming them with their path
// ("template.nmae"), and keeps numbers in data as written (1000000, not
// 1e+06).
func (t *templateField) UnmarshalJSON(b []byte) error {
	if err := checkKeys(b, t); err != nil {
		return err
	}
	type plain templateField
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode((*plain)(t))
}

var attachmentsType = reflect.TypeOf([]attachment(nil))

type attachment struct {
	Filename    string  `json:"filename"`
	ContentType string  `json:"content_type"`
	Content     content `json:"-"` // streamed: see scanner.content
	Inline      bool    `json:"inline"`
	ContentID   string  `json:"content_id"`
}

// UnmarshalJSON refuses unknown keys; content is streamed separately and
// is never among them.
func (a *attachment) UnmarshalJSON(b []byte) error {
	if err := checkKeys(b, a); err != nil {
		return err
	}
	type plain attachment
	return json.Unmarshal(b, (*plain)(a))
}

// addrList is a list of addresses, given as a JSON array of strings or,
// for convenience, as one string.
type addrList []string

var stringsType = reflect.TypeOf([]string(nil))

// UnmarshalJSON accepts a string, an array of strings, or null.
func (l *addrList) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = addrList{s}
		return nil
	case '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return err
		}
		*l = ss
		return nil
	case 'n':
		*l = nil
		return nil
	}
	// encoding/json adds the field name to this error.
	return &json.UnmarshalTypeError{Value: jsonValueKind(b[0]), Type: stringsType}
}

// headerList is the "headers" object, kept in the order given so that
// custom headers are written in that order.
type headerList [][2]string

var headersType = reflect.TypeOf(map[string]string(nil))

// UnmarshalJSON reads a JSON object of string values.
func (h *headerList) UnmarshalJSON(b []byte) error {
	if b[0] == 'n' {
		*h = nil
		return nil
	}
	if b[0] != '{' {
		return &json.UnmarshalTypeError{Value: jsonValueKind(b[0]), Type: headersType}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // the opening brace
		return err
	}
	var out headerList
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if raw[0] != '"' {
			return &json.UnmarshalTypeError{Value: jsonValueKind(raw[0]), Type: reflect.TypeOf(""), Field: name}
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil {
			return err
		}
		out = append(out, [2]string{name, value})
	}
	*h = out
	return nil
}

func jsonValueKind(c byte) string {
	switch c {
	case '"':
		return "string"
	case '[':
		return "array"
	case '{':
		return "object"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// spillSize is the decoded attachment size above which content goes to a
// temporary file instead of memory, so that a request costs about its
// body once rather than twice.
const spillSize = 64 << 10

// content is an attachment's content, decoded from base64 while the
// request streams in (see b64Writer). An invalid encoding is kept in err
// rather than failing the read, so that the error can name the attachment
// by its index.
type content struct {
	data []byte
	file *os.File
	err  error // invalid base64: the client's fault
	// spillErr is a failure to write the temporary file: the server's.
	spillErr error
}

var contentType = reflect.TypeOf("")

// reader returns the decoded content from its start.
func (c *content) reader() (io.Reader, error) {
	if c.file == nil {
		return bytes.NewReader(c.data), nil
	}
	if _, err := c.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return c.file, nil
}

// release removes a temporary file, if any.
func (c *content) release() {
	if c.file != nil {
		c.file.Close()
		os.Remove(c.file.Name())
		c.file = nil
	}
}
