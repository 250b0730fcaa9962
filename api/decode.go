package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// decodeSend reads the body of POST /v1/messages as a stream. The fields
// other than attachment content are copied (and charged to g) and then
// decoded by encoding/json, whose UnmarshalJSON methods name fields in
// their errors; each attachment's base64 content is decoded as it arrives,
// into memory while small and into a temporary file past that, so a 25 MiB
// attachment never sits in memory whole, encoded or decoded. Everything
// is checked for what encoding/json would let pass silently: invalid
// UTF-8 and keys given twice are errors that name the field.
//
// req.release must be called whatever the outcome.
func decodeSend(body io.Reader, g *grant, req *sendRequest) error {
	s := newScanner(body)
	b, err := s.peek()
	if err == io.EOF {
		return badRequest("", "the request body is empty; a JSON object was expected")
	}
	if err != nil {
		return err
	}
	if b != '{' {
		if err := s.value(""); err != nil {
			return err
		}
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: objectType}
	}
	obj := &memBuf{g: g}
	obj.WriteByte('{')
	err = s.object("", func(key, path string) (bool, error) {
		if key == "attachments" {
			return true, s.attachments(req, g)
		}
		return true, s.captureMember(obj, key, path)
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if err := obj.WriteByte('}'); err != nil {
		return err
	}
	if err := checkKeys(obj.Bytes(), req); err != nil {
		return err
	}
	return json.Unmarshal(obj.Bytes(), req)
}

// captureMember copies one member, "key":value, into the object obj is
// building, after the members before it.
func (s *scanner) captureMember(obj *memBuf, key, path string) error {
	if obj.Len() > 1 {
		obj.WriteByte(',')
	}
	if err := writeKey(obj, key); err != nil {
		return err
	}
	obj.WriteByte(':')
	return s.captureValue(path, obj)
}

// nullOr reads a null (reporting true) or checks that the value starts
// with open, returning a type error naming path as a t otherwise.
func (s *scanner) nullOr(open byte, t reflect.Type, path string) (bool, error) {
	b, err := s.peek()
	if err != nil {
		return false, s.eof(err)
	}
	switch b {
	case 'n':
		return true, s.literal("null")
	case open:
		return false, nil
	}
	return false, &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: t, Field: path}
}

// attachments reads the "attachments" array (or null).
func (s *scanner) attachments(req *sendRequest, g *grant) error {
	if null, err := s.nullOr('[', attachmentsType, "attachments"); null || err != nil {
		return err
	}
	return s.array("attachments", func(i int, path string) error {
		// Kept before it is filled, so that release finds its file.
		req.Attachments = append(req.Attachments, attachment{})
		return s.attachment(&req.Attachments[i], path, g)
	})
}

// attachment reads one attachment object: content streams into a.Content,
// the other members are decoded by encoding/json.
func (s *scanner) attachment(a *attachment, path string, g *grant) error {
	b, err := s.peek()
	if err != nil {
		return s.eof(err)
	}
	if b != '{' {
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: objectType, Field: path}
	}
	obj := &memBuf{g: g}
	obj.WriteByte('{')
	var c content
	err = s.object(path, func(key, kp string) (bool, error) {
		if key == "content" {
			return true, s.content(&c, kp, g)
		}
		return true, s.captureMember(obj, key, kp)
	})
	a.Content = c
	if err != nil {
		return err
	}
	if err := obj.WriteByte('}'); err != nil {
		return err
	}
	content := a.Content
	if err := json.Unmarshal(obj.Bytes(), a); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			te.Field = strings.TrimSuffix(path+"."+te.Field, ".")
		}
		return err
	}
	a.Content = content
	return nil
}

// content streams a base64 string (or null) into c.
func (s *scanner) content(c *content, path string, g *grant) error {
	if null, err := s.nullOr('"', contentType, path); null || err != nil {
		return err
	}
	w := &b64Writer{c: c, g: g}
	if err := s.str(path, w); err != nil {
		return err
	}
	return w.close()
}

// b64Writer decodes standard base64 (padding required, CR and LF ignored,
// as encoding/base64's decoder does) written to it in pieces, and writes
// the bytes to its content. Invalid base64 is recorded in the content, not
// returned, so the request is still read to its end and the error can be
// answered as the client's, naming the attachment.
type b64Writer struct {
	c      *content
	g      *grant
	buf    []byte // encoded characters not yet decoded
	seen   int64  // encoded characters before buf, for error offsets
	padded bool   // a quantum with padding was decoded: nothing may follow
	out    []byte
}

func (w *b64Writer) Write(p []byte) (int, error) {
	if w.c.err != nil || w.c.spillErr != nil {
		return len(p), nil
	}
	for _, b := range p {
		if b != '\r' && b != '\n' {
			w.buf = append(w.buf, b)
		}
	}
	if len(w.buf) >= 16<<10 {
		n := len(w.buf) &^ 3
		if err := w.decode(w.buf[:n]); err != nil {
			return 0, err
		}
		w.buf = append(w.buf[:0], w.buf[n:]...)
	}
	return len(p), nil
}

// decode decodes whole quanta.
func (w *b64Writer) decode(enc []byte) error {
	if len(enc) == 0 {
		return nil
	}
	if w.padded {
		w.c.err = base64.CorruptInputError(w.seen)
		return nil
	}
	w.out = w.out[:0]
	w.out = append(w.out, make([]byte, base64.StdEncoding.DecodedLen(len(enc)))...)
	n, err := base64.StdEncoding.Decode(w.out, enc)
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		w.c.err = base64.CorruptInputError(w.seen + int64(ce))
		return nil
	}
	w.padded = enc[len(enc)-1] == '='
	w.seen += int64(len(enc))
	return w.c.add(w.out[:n], w.g)
}

// close decodes the rest, which must be whole quanta.
func (w *b64Writer) close() error {
	if w.c.err != nil || w.c.spillErr != nil {
		return nil
	}
	if len(w.buf)%4 != 0 {
		w.c.err = base64.CorruptInputError(w.seen + int64(len(w.buf)&^3))
		return nil
	}
	return w.decode(w.buf)
}

// add appends decoded bytes: in memory up to spillSize (charged to g),
// then to a temporary file.
func (c *content) add(p []byte, g *grant) error {
	if c.file == nil && len(c.data)+len(p) <= spillSize {
		if err := g.take(int64(len(p))); err != nil {
			return err
		}
		c.data = append(c.data, p...)
		return nil
	}
	if c.file == nil {
		f, err := os.CreateTemp("", "outbox-api-attachment-*")
		if err != nil {
			c.spillErr = err
			return nil
		}
		c.file = f
		if _, err := f.Write(c.data); err != nil {
			c.spillErr = err
			return nil
		}
		c.data = nil
	}
	if _, err := c.file.Write(p); err != nil {
		c.spillErr = fmt.Errorf("spooling an attachment: %w", err)
	}
	return nil
}
