package headerblock

import (
	"bytes"
	"io"
	"testing"
)

func TestRemoved(t *testing.T) {
	hdr := "From: a@x\r\nBcc : b@x,\r\n\tc@x\r\nTo: d@x\r\nbcc\t:e@x\r\nResent-Bcc: f@x\r\nBCC:\r\n\r\n"
	got := Removed([]byte(hdr))
	want := []Field{{"Bcc", "b@x,\tc@x"}, {"bcc", "e@x"}, {"Resent-Bcc", "f@x"}, {"BCC", ""}}
	if len(got) != len(want) {
		t.Fatalf("Removed = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
	if got := Removed([]byte("From: a@x\r\nTo: b@x\r\n\r\n")); len(got) != 0 {
		t.Errorf("nothing to remove, got %q", got)
	}
}

// isBccName is an independent statement of which field names the filter
// removes: Bcc and Resent-Bcc in any case with white space before the
// colon, judged on the first nameWindow bytes of the line.
func isBccName(line []byte) bool {
	name := line[:min(len(line), nameWindow)]
	if i := bytes.IndexAny(name, ":\n"); i >= 0 {
		name = name[:i]
	}
	name = bytes.TrimRight(name, " \t\r")
	return bytes.EqualFold(name, []byte("bcc")) || bytes.EqualFold(name, []byte("resent-bcc"))
}

// headerLines splits a message into its header lines and the rest, ending
// the header block at the first line of nothing but CRs before its LF.
func headerLines(msg []byte) ([][]byte, []byte) {
	var lines [][]byte
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			return append(lines, msg), nil
		}
		line := msg[:i+1]
		msg = msg[i+1:]
		if len(bytes.TrimLeft(line[:i], "\r")) == 0 {
			return append(lines, line), msg
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// FuzzStripBcc checks the filter against isBccName: every field it
// removes is a Bcc or Resent-Bcc field and every field it keeps is not;
// the body passes byte for byte; and Removed names exactly the removed
// fields.
func FuzzStripBcc(f *testing.F) {
	for _, tc := range stripCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte("Bcc : x@example.com\r\nTo: y\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := io.ReadAll(StripBcc(bytes.NewReader(msg)))
		if err != nil {
			t.Fatal(err)
		}
		inLines, inBody := headerLines(msg)
		outLines, outBody := headerLines(out)
		if !bytes.Equal(inBody, outBody) {
			t.Fatalf("body changed: %q became %q", inBody, outBody)
		}
		j, removedStarts := 0, 0
		dropping := false
		for _, line := range inLines {
			cont := line[0] == ' ' || line[0] == '\t'
			if !cont {
				dropping = isBccName(line) && !isBlank(line)
			}
			if dropping {
				if !cont {
					removedStarts++
				}
				continue
			}
			if j >= len(outLines) || !bytes.Equal(line, outLines[j]) {
				t.Fatalf("kept line %q missing from the output %q", line, out)
			}
			j++
		}
		if j != len(outLines) {
			t.Fatalf("output has lines the input did not: %q from %q", out, msg)
		}
		if n := len(Removed(msg[:len(msg)-len(inBody)])); n != removedStarts {
			t.Fatalf("Removed found %d fields, the filter removed %d, in %q", n, removedStarts, msg)
		}
	})
}
