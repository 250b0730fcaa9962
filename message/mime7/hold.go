package mime7

import (
	"bytes"
	"io"
	"os"
)

// holdMem is how much of a held part stays in memory; the rest goes to a
// temporary file.
const holdMem = 64 << 10

// hold keeps the bytes of a part whose fate is not yet known (is there an
// 8-bit byte further on?) in constant memory.
type hold struct {
	mem      []byte
	file     *os.File // reused for every part
	unlinked bool     // file's name was removed at creation
	size     int64
}

func (h *hold) Write(p []byte) (int, error) {
	if h.file == nil && len(h.mem)+len(p) <= holdMem {
		h.mem = append(h.mem, p...)
		h.size += int64(len(p))
		return len(p), nil
	}
	if h.file == nil {
		f, err := os.CreateTemp("", "outbox-mime7-*")
		if err != nil {
			return 0, err
		}
		// Unlinked at once: a crash leaves nothing behind. Where the system
		// refuses to remove an open file, close removes it.
		h.file, h.unlinked = f, os.Remove(f.Name()) == nil
	}
	n, err := h.file.WriteAt(p, h.size-int64(len(h.mem)))
	h.size += int64(n)
	return n, err
}

// section returns a reader of the held bytes [off, end).
func (h *hold) section(off, end int64) io.Reader {
	m := int64(len(h.mem))
	var rs []io.Reader
	if off < m {
		rs = append(rs, bytes.NewReader(h.mem[off:min(end, m)]))
	}
	if end > m {
		start := max(off, m) - m
		rs = append(rs, io.NewSectionReader(h.file, start, end-m-start))
	}
	return io.MultiReader(rs...)
}

// reset empties the hold for the next part, keeping its memory and file.
func (h *hold) reset() {
	h.mem, h.size = h.mem[:0], 0
}

// close releases the temporary file.
func (h *hold) close() {
	if h.file != nil {
		h.file.Close()
		if !h.unlinked {
			os.Remove(h.file.Name())
		}
		h.file = nil
	}
}
