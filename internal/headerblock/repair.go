package headerblock

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// What Repair adds, as it is recorded on the message.
const (
	RepairDate        = "date"         // a Date field
	RepairMessageID   = "message-id"   // a Message-ID field
	RepairHeaderBlock = "header-block" // the empty line of a message that had no header block
)

// maxSubject bounds the Subject kept for listing.
const maxSubject = 4 << 10

// Info is what a header block says about its message: what the queue lists
// and what Repair needs.
type Info struct {
	// Subject is the first Subject field's value, unfolded and still
	// encoded as written (at most 4 KiB of it).
	Subject string
	// Date and MessageID report the fields, in any case.
	Date, MessageID bool
	// NoHeader reports a message whose first line cannot be a header field
	// (nor the empty line of an empty header block): it has no header block,
	// and whatever header is put on top of it would swallow its first line.
	NoHeader bool
}

// scanner fills an Info from a header block fed a line, or a piece of a
// long line, at a time.
type scanner struct {
	info    Info
	subject []byte
	inSubj  bool // the Subject field's continuation lines are being read
}

func (s *scanner) feed(p []byte, lineStart bool) {
	if lineStart && len(p) > 0 && p[0] != ' ' && p[0] != '\t' {
		s.inSubj = false
		name, value, _ := bytes.Cut(p, []byte(":"))
		switch strings.ToLower(string(bytes.TrimRight(name, " \t"))) {
		case "subject":
			if s.subject == nil {
				s.inSubj, s.subject, p = true, []byte{}, value
			}
		case "date":
			s.info.Date = true
		case "message-id":
			s.info.MessageID = true
		}
	}
	if s.inSubj {
		p = bytes.TrimRight(p, "\r\n")
		s.subject = append(s.subject, p[:min(len(p), maxSubject-len(s.subject))]...)
	}
}

// isField reports whether a line (its start at least: up to the colon)
// is a header field: a name of printable ASCII but the colon, maybe white
// space, then the colon (RFC 5322 §2.2, §4.5.3), as Postfix's cleanup
// decides it.
func isField(start []byte) bool {
	i := bytes.IndexByte(start, ':')
	if i < 0 {
		return false
	}
	name := bytes.TrimRight(start[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// firstLine peeks at the start of the message, enough to classify its
// first line, without consuming it.
func firstLine(br *bufio.Reader) []byte {
	window := min(nameWindow, br.Size())
	for {
		buf, err := br.Peek(br.Buffered())
		if bytes.IndexAny(buf, ":\n") >= 0 || len(buf) >= window || err != nil {
			return buf
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			buf, _ = br.Peek(br.Buffered())
			return buf
		}
	}
}

// readBlock reads the header block from br, handing each line (or piece
// of a long line) to w; max > 0 bounds its size.
func readBlock(br *bufio.Reader, max int64, w func([]byte) error) (Info, error) {
	var s scanner
	first := firstLine(br)
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i+1]
	}
	if len(first) > 0 && !isBlank(first) && !isField(first) {
		s.info.NoHeader = true
		return s.info, nil
	}
	var n int64
	lineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return Info{}, err
		}
		n += int64(len(chunk))
		if max > 0 && n > max {
			return Info{}, ErrTooLarge
		}
		blank := lineStart && isBlank(chunk)
		s.feed(chunk, lineStart)
		if werr := w(chunk); werr != nil {
			return Info{}, werr
		}
		if err == io.EOF || blank {
			break
		}
		lineStart = err != bufio.ErrBufferFull
	}
	s.info.Subject = string(s.subject)
	return s.info, nil
}

// Block is a header block read aside by Spool: in memory up to a limit,
// the rest in an unlinked temporary file.
type Block struct {
	Info
	mem  bytes.Buffer
	max  int
	file *os.File
}

// Spool reads the header block from br as Read does, whatever its size:
// past mem bytes it goes on in a temporary file, so that memory stays
// bounded while the whole block (and so its Subject and whether it has a
// Date) is known before the message is stored. Close the Block when done.
func Spool(br *bufio.Reader, mem int) (*Block, error) {
	b := blockPool.Get().(*Block)
	b.max = mem
	info, err := readBlock(br, 0, b.write)
	if err == nil && b.file != nil {
		_, err = b.file.Seek(0, io.SeekStart)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Info = info
	return b, nil
}

func (b *Block) write(p []byte) error {
	if b.file == nil && b.mem.Len()+len(p) <= b.max {
		b.mem.Write(p)
		return nil
	}
	if b.file == nil {
		f, err := os.CreateTemp("", "outbox-header-*")
		if err != nil {
			return err
		}
		os.Remove(f.Name()) // nothing is left behind, even by a crash
		b.file = f
	}
	_, err := b.file.Write(p)
	return err
}

// Reader returns the header block as read, once.
func (b *Block) Reader() io.Reader {
	if b.file == nil {
		return &b.mem
	}
	return io.MultiReader(&b.mem, b.file)
}

// Close releases the temporary file, if there is one, and the Block,
// which must not be used after.
func (b *Block) Close() error {
	var err error
	if b.file != nil {
		err = b.file.Close()
		b.file = nil
	}
	b.mem.Reset()
	b.Info = Info{}
	blockPool.Put(b)
	return err
}

// blockPool recycles Blocks and their buffers across messages.
var blockPool = sync.Pool{New: func() any { return new(Block) }}

// Repair is what a message lacks that an MSA adds (RFC 6409 §8): a Date
// and a Message-ID when there are none, and the empty line that ends a
// header block when there is no header block, so that the fields added on
// top of it (these, and the Received line) do not swallow its first line.
// Nothing else of the message is changed.
type Repair struct {
	Fields    string   // fields to write before the header block
	Separator string   // the empty line, written after it
	Added     []string // RepairDate, RepairMessageID, RepairHeaderBlock, in that order
}

// Repair works out what the message needs. The Message-ID's right side is
// hostname (the host names the IDs it makes, RFC 5322 §3.6.4).
func (i Info) Repair(hostname string, now time.Time) Repair {
	var r Repair
	if !i.Date {
		r.Fields += "Date: " + now.Format(time.RFC1123Z) + "\r\n"
		r.Added = append(r.Added, RepairDate)
	}
	if !i.MessageID {
		var id [16]byte
		rand.Read(id[:])
		r.Fields += "Message-ID: <" + hex.EncodeToString(id[:]) + "@" + idDomain(hostname) + ">\r\n"
		r.Added = append(r.Added, RepairMessageID)
	}
	if i.NoHeader {
		r.Separator = "\r\n"
		r.Added = append(r.Added, RepairHeaderBlock)
	}
	return r
}

// Apply returns the repaired message: the fields, the header block, the
// empty line if it was missing, then the body.
func (r Repair) Apply(header, body io.Reader) io.Reader {
	return io.MultiReader(strings.NewReader(r.Fields), header, strings.NewReader(r.Separator), body)
}

// idDomain keeps what a Message-ID's domain may hold of a host name
// (letters, digits, '-', '.'), or "localhost" if nothing is left.
func idDomain(host string) string {
	var b strings.Builder
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' {
			b.WriteByte(c)
		}
	}
	if d := strings.Trim(b.String(), "."); d != "" {
		return d
	}
	return "localhost"
}
