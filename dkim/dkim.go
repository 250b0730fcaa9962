// Package dkim signs outgoing mail with DKIM (RFC 6376), RSA-SHA256 and
// Ed25519-SHA256 (RFC 8463), relaxed/relaxed, as a stream.
//
// A DKIM-Signature field goes before the message but covers a hash of the
// whole body, so a signer that sees the message once must keep it until
// the end. This one does not: Sign reads the message once and returns the
// signature fields, and the message is then read a second time to be sent
// after them (Signer.Open does both). A queued body is stored, so reading
// it twice costs a read, never memory: signing a 200 MiB message holds a
// few tens of kilobytes.
//
// The canonicalisation is written here rather than taken from
// github.com/emersion/go-msgauth (which the tests use to verify): its
// relaxed body canonicaliser keeps every run of empty lines in memory
// until the next non-empty one, so a body made of empty lines is held
// whole, and its Signer runs a goroutine and hashes the body once per key.
// Here a body is hashed once for every key of a domain (dual signing costs
// one body hash), in constant memory.
package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/internal/crlf"
)

// ErrUnsignable is wrapped by the errors Sign returns for a message that
// cannot be signed as it is (no From field, several, a From that does not
// parse, signed fields too long). Such a message can still be sent,
// unsigned; any other error from Sign is the reader's.
var ErrUnsignable = errors.New("dkim: message cannot be signed")

// Signer signs messages with the keys it was given. It is safe for
// concurrent use.
type Signer struct {
	keys []Key
	now  func() time.Time
}

// NewSigner returns a Signer for keys, which it checks: a domain and a
// selector each, and an RSA key of 2048 to 4096 bits or an Ed25519 key.
// Several keys may share a domain (dual signing, or a key rotation): a
// message is signed with every key of the most specific domain that
// covers its From address.
func NewSigner(keys ...Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("dkim: no keys")
	}
	s := &Signer{now: time.Now}
	for _, k := range keys {
		k, err := k.check()
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign reads a message from r, with its line endings normalised to CRLF as
// the smtp client sends it, and returns the DKIM-Signature fields to put
// before it: one per key that applies, each folded and ending in CRLF.
// It returns nil and no error when no key covers the From domain, after
// reading only the header block.
//
// The message is read once, in constant memory; only the header fields
// that are signed are kept (at most 256 KiB of them).
func (s *Signer) Sign(r io.Reader) ([]byte, error) {
	st := states.Get().(*signState)
	defer st.release()
	st.crlf.Reset(r)
	br := st.br
	fields, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	domains, err := fromDomains(fields)
	if err != nil {
		return nil, err
	}
	keys := s.keysFor(domains)
	if len(keys) == 0 {
		return nil, nil
	}
	bh := sha256.New()
	body := &st.body
	*body = relaxedBody{w: bh, out: body.out[:0]}
	if _, err := br.WriteTo(body); err != nil {
		return nil, err
	}
	if err := body.Close(); err != nil {
		return nil, err
	}
	bodyHash := base64.StdEncoding.EncodeToString(bh.Sum(nil))
	names := headerNames(fields)
	t := s.now().Unix()
	var out []byte
	for _, k := range keys {
		sig, err := k.sign(fields, names, bodyHash, t)
		if err != nil {
			return nil, err
		}
		out = append(out, sig...)
	}
	return out, nil
}

// Open returns the message that open yields, signed: Sign reads it once
// from a first open, and the reader returned reads the DKIM-Signature
// fields and then the message, normalised, from a second open. The two
// opens must yield the same bytes (a stored body does). Closing the reader
// closes the second opening. When no key covers the From domain the
// reader yields the message unsigned, with no error; an error wrapping
// ErrUnsignable means the caller may send the message unsigned.
func (s *Signer) Open(open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	first, err := open()
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(first)
	first.Close()
	if err != nil {
		return nil, err
	}
	second, err := open()
	if err != nil {
		return nil, err
	}
	return signedReader{io.MultiReader(bytes.NewReader(sig), crlf.NewReader(second)), second}, nil
}

// signState holds the buffers of one Sign, reused by the next: a small
// message would otherwise cost more in buffers than in bytes.
type signState struct {
	crlf *crlf.Reader
	br   *bufio.Reader
	body relaxedBody
}

var states = sync.Pool{New: func() any {
	st := &signState{crlf: crlf.NewReader(nil), body: relaxedBody{out: make([]byte, 0, 32<<10)}}
	st.br = bufio.NewReaderSize(st.crlf, 32<<10)
	return st
}}

// release drops the references to the message and returns st to the pool.
func (st *signState) release() {
	st.crlf.Reset(nil)
	st.br.Reset(st.crlf)
	st.body.w = nil
	states.Put(st)
}

// signedReader is the signature and the message, closed with the latter.
type signedReader struct {
	io.Reader
	c io.Closer
}

func (r signedReader) Close() error { return r.c.Close() }

// keysFor returns the keys of the most specific configured domain that
// covers every From domain.
func (s *Signer) keysFor(domains []string) []Key {
	best := ""
	for _, k := range s.keys {
		if len(k.Domain) <= len(best) {
			continue
		}
		ok := true
		for _, d := range domains {
			ok = ok && covers(k.Domain, d)
		}
		if ok {
			best = k.Domain
		}
	}
	var keys []Key
	for _, k := range s.keys {
		if best != "" && k.Domain == best {
			keys = append(keys, k)
		}
	}
	return keys
}

// headerNames is the h= list: every signed field present, as many times
// as it occurs, and From once more, so that a From added on the way makes
// the signature fail (RFC 6376 §8.15 oversigning).
func headerNames(fields []field) []string {
	count := map[string]int{}
	for _, f := range fields {
		count[f.name]++
	}
	var names []string
	for _, n := range signedFields {
		for range count[strings.ToLower(n)] {
			names = append(names, n)
		}
	}
	return append(names, "From")
}

// sign returns this key's DKIM-Signature field for a message whose signed
// fields, h= list and body hash are given.
func (k Key) sign(fields []field, names []string, bodyHash string, t int64) ([]byte, error) {
	alg := "rsa-sha256"
	if _, ok := k.Signer.Public().(ed25519.PublicKey); ok {
		alg = "ed25519-sha256"
	}
	tags := []string{"v=1;", "a=" + alg + ";", "c=relaxed/relaxed;",
		"d=" + k.Domain + ";", "s=" + k.Selector + ";", "t=" + strconv.FormatInt(t, 10) + ";"}
	for i, n := range names {
		if i == 0 {
			n = "h=" + n
		}
		if i < len(names)-1 {
			n += ":"
		} else {
			n += ";"
		}
		tags = append(tags, n)
	}
	tags = append(tags, "bh="+bodyHash+";", "b=")
	unsigned := foldTags(tags)

	h := sha256.New()
	var buf []byte
	for _, raw := range pick(fields, names) {
		buf = relaxedHeader(buf[:0], raw)
		h.Write(buf)
	}
	buf = relaxedHeader(buf[:0], unsigned)
	h.Write(buf[:len(buf)-2]) // the signature field is hashed without its CRLF
	digest := h.Sum(nil)

	var sig []byte
	var err error
	if _, ok := k.Signer.(ed25519.PrivateKey); ok {
		sig, err = k.Signer.Sign(rand.Reader, digest, crypto.Hash(0))
	} else {
		sig, err = k.Signer.Sign(rand.Reader, digest, crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: signing with %s._domainkey.%s: %w", k.Selector, k.Domain, err)
	}
	return appendB(unsigned[:len(unsigned)-2], base64.StdEncoding.EncodeToString(sig)), nil
}

// pick returns the raw fields that names select, in h= order: a name
// listed n times selects its last n instances from the bottom up, and a
// name listed more often than it occurs selects nothing (RFC 6376 §5.4.2).
func pick(fields []field, names []string) [][]byte {
	used := map[string]int{}
	var out [][]byte
	for _, n := range names {
		n = strings.ToLower(n)
		skip := used[n]
		used[n]++
		for i := len(fields) - 1; i >= 0; i-- {
			if fields[i].name != n {
				continue
			}
			if skip == 0 {
				out = append(out, fields[i].raw)
				break
			}
			skip--
		}
	}
	return out
}

// lineWidth is where signature fields are folded (RFC 5322 §2.1.1).
const lineWidth = 78

// foldTags writes "DKIM-Signature:" and the tags, each followed by a space
// or a fold, ending in CRLF.
func foldTags(tags []string) []byte {
	out := []byte("DKIM-Signature:")
	col := len(out)
	for i, t := range tags {
		// Names in h= follow their colon directly unless the line is full.
		sep := i == 0 || !strings.HasSuffix(tags[i-1], ":")
		switch {
		case col+1+len(t) > lineWidth:
			out = append(out, "\r\n\t"...)
			col = 1
		case sep:
			out = append(out, ' ')
			col++
		}
		out = append(out, t...)
		col += len(t)
	}
	return append(out, "\r\n"...)
}

// appendB appends the signature to a field that ends in "b=", folding it
// (white space in b= is ignored, RFC 6376 §3.5), and the final CRLF.
func appendB(field []byte, b64 string) []byte {
	col := len(field) - (bytes.LastIndexByte(field, '\n') + 1)
	for len(b64) > 0 {
		room := lineWidth - col
		if room < 8 {
			field = append(field, "\r\n\t"...)
			col, room = 1, lineWidth-1
		}
		n := min(room, len(b64))
		field = append(field, b64[:n]...)
		b64 = b64[n:]
		col += n
	}
	return append(field, "\r\n"...)
}
