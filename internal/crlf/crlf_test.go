package crlf

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// reference is the rule, written the obvious way.
func reference(in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); i++ {
		switch {
		case in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case in[i] == '\r' || in[i] == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, in[i])
		}
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

func TestCases(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"a":             "a\r\n",
		"a\n":           "a\r\n",
		"a\r":           "a\r\n",
		"a\r\n":         "a\r\n",
		"a\r\r\nb":      "a\r\n\r\nb\r\n",
		"\n\n":          "\r\n\r\n",
		"a\n\rb\r\n\r":  "a\r\n\r\nb\r\n\r\n",
		"x\r\ny\rz\nw.": "x\r\ny\r\nz\r\nw.\r\n",
	} {
		got, err := io.ReadAll(NewReader(bytes.NewReader([]byte(in))))
		if err != nil || string(got) != want {
			t.Errorf("%q → %q, %v; want %q", in, got, err, want)
		}
	}
}

// Any split of the input into reads gives the same bytes, a CR at the end
// of one read and its LF at the start of the next included.
func TestSplits(t *testing.T) {
	in := []byte("a\r\nb\rc\nd\r\r\n\ne")
	want := reference(in)
	for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(in)), iotest.HalfReader(bytes.NewReader(in)), iotest.DataErrReader(bytes.NewReader(in))} {
		got, err := io.ReadAll(NewReader(r))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q, %v; want %q", got, err, want)
		}
	}
}

func TestErrorKept(t *testing.T) {
	boom := errors.New("boom")
	c := NewReader(io.MultiReader(bytes.NewReader([]byte("ab\r")), iotest.ErrReader(boom)))
	got, err := io.ReadAll(c)
	if !errors.Is(err, boom) || string(got) != "ab\r\n" {
		t.Errorf("%q, %v", got, err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("the error is not kept: %v", err)
	}
}

// Normalising 10 MiB allocates nothing beyond the Reader itself.
func TestConstantAllocation(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789012345678901234567890123456789012345678901234567890123456789abcdef\n"), 10<<20/78)
	c := NewReader(nil)
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	c.Reset(bytes.NewReader(data))
	n, _ := io.Copy(io.Discard, c)
	runtime.ReadMemStats(&b)
	if alloc := b.TotalAlloc - a.TotalAlloc; alloc > 64<<10 {
		t.Errorf("normalising %d MiB allocated %d KiB", n>>20, alloc>>10)
	}
}

// FuzzReader checks the Reader against the reference on any input, read
// in any pieces.
func FuzzReader(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\nd"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var r io.Reader = bytes.NewReader(in)
		if step%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		got, err := io.ReadAll(NewReader(r))
		if err != nil || !bytes.Equal(got, reference(in)) {
			t.Fatalf("%q → %q, %v; want %q", in, got, err, reference(in))
		}
	})
}
