package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"

	"golang.org/x/net/idna"
)

// signedFields are the header fields signed when present, in the order h=
// lists them: RFC 6376 §5.4.1's recommendation plus the MIME fields and
// the RFC 8058 List-Unsubscribe-Post. Trace fields (Received,
// Return-Path) are left out: relays add them.
var signedFields = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
	"To", "Cc", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To",
	"Resent-Cc", "Resent-Message-ID", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
}

var signedSet = func() map[string]bool {
	m := make(map[string]bool, len(signedFields))
	for _, f := range signedFields {
		m[strings.ToLower(f)] = true
	}
	return m
}()

// maxSignedHeader bounds the bytes of the fields that are kept to be
// signed; every other field streams past.
const maxSignedHeader = 256 << 10

// field is one header field kept for signing: its lowercase name and its
// raw bytes, continuation lines and final CRLF included.
type field struct {
	name string
	raw  []byte
}

// readHeader reads the header block from br (CRLF-normalised) up to and
// including the empty line that ends it, or to the end of a message that
// has no body, and returns the fields that are signed. Lines of any
// length stream through; only signed fields are kept.
func readHeader(br *bufio.Reader) ([]field, error) {
	var fields []field
	kept, keep, lineStart, line := 0, false, true, 0
	for {
		frag, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return nil, err
		}
		if len(frag) == 0 {
			return fields, nil
		}
		if lineStart {
			if string(frag) == "\r\n" {
				return fields, nil
			}
			line++
			// A continuation line belongs to the field before it; a line
			// that is neither that nor a field is read differently by
			// different verifiers, so such a message is not signed.
			if frag[0] == ' ' || frag[0] == '\t' {
				if line == 1 {
					return nil, fmt.Errorf("%w: the header starts with a continuation line", ErrUnsignable)
				}
			} else {
				name, ok := fieldName(frag)
				if !ok {
					return nil, fmt.Errorf("%w: header line %d is not a field (no name and colon)", ErrUnsignable, line)
				}
				keep = signedSet[name]
				if keep {
					fields = append(fields, field{name: name})
				}
			}
		}
		if keep {
			if kept += len(frag); kept > maxSignedHeader {
				return nil, fmt.Errorf("%w: signed header fields longer than %d bytes", ErrUnsignable, maxSignedHeader)
			}
			f := &fields[len(fields)-1]
			f.raw = append(f.raw, frag...)
		}
		lineStart = err != bufio.ErrBufferFull
		if err == io.EOF {
			return fields, nil
		}
	}
}

// fieldName returns the lowercase name of the field a line starts, and
// false when the line (as far as it was read) does not start with a
// field name (printable ASCII) and a colon.
func fieldName(line []byte) (string, bool) {
	name, _, ok := bytes.Cut(line, []byte(":"))
	name = bytes.TrimRight(name, " \t") // obsolete syntax allows WSP before the colon
	if !ok || len(name) == 0 {
		return "", false
	}
	for _, b := range name {
		if b < 33 || b > 126 {
			return "", false
		}
	}
	return strings.ToLower(string(name)), true
}

// fieldValue returns a raw field's value, unfolded.
func fieldValue(raw []byte) string {
	_, v, _ := bytes.Cut(raw, []byte(":"))
	v = bytes.ReplaceAll(v, []byte("\r\n"), nil)
	return strings.TrimSpace(string(v))
}

// addressParser reads From fields; an encoded word in an unknown charset
// is left as it is, since only the domains matter here.
var addressParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// fromDomains returns the lowercase A-label domain of every mailbox in the
// message's single From field.
func fromDomains(fields []field) ([]string, error) {
	var from []byte
	for _, f := range fields {
		if f.name == "from" {
			if from != nil {
				return nil, fmt.Errorf("%w: several From fields", ErrUnsignable)
			}
			from = f.raw
		}
	}
	if from == nil {
		return nil, fmt.Errorf("%w: no From field", ErrUnsignable)
	}
	list, err := addressParser.ParseList(fieldValue(from))
	if err == nil && len(list) == 0 {
		err = errors.New("no mailbox")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: From field: %v", ErrUnsignable, err)
	}
	domains := make([]string, len(list))
	for i, a := range list {
		at := strings.LastIndexByte(a.Address, '@')
		d, err := normalizeDomain(a.Address[at+1:])
		if err != nil {
			return nil, fmt.Errorf("%w: From address %q: %v", ErrUnsignable, a.Address, err)
		}
		domains[i] = d
	}
	return domains, nil
}

// normalizeDomain returns d lowercase, in A-labels, without a final dot.
func normalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	a, err := idna.ToASCII(d)
	if err != nil {
		return "", err
	}
	return strings.ToLower(a), nil
}

// covers reports whether mail from domain may be signed with d=key:
// domain is key or one of its subdomains.
func covers(key, domain string) bool {
	return domain == key || strings.HasSuffix(domain, "."+key)
}
