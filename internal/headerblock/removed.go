package headerblock

import (
	"bytes"
	"io"
	"strings"
)

// Field is one header field that StripBcc removes: its name as written
// (trailing white space trimmed) and its value unfolded (line ends of
// continuation lines removed, leading white space of the value trimmed).
type Field struct {
	Name, Value string
}

// Removed returns the fields StripBcc removes from the header block hdr,
// in order, so that a caller taking recipients from them sees exactly what
// the filter drops — "Bcc : x", "bcc\t: x" and "BCC: x" alike. It runs the
// filter itself and compares, so the two can never disagree.
func Removed(hdr []byte) []Field {
	kept, _ := io.ReadAll(StripBcc(bytes.NewReader(hdr)))
	in := bytes.SplitAfter(hdr, []byte("\n"))
	out := bytes.SplitAfter(kept, []byte("\n"))
	var fields []Field
	j := 0
	for _, line := range in {
		if len(line) == 0 {
			continue
		}
		// The filter removes whole lines, so what it kept is a subsequence
		// of the input: a removed line is never equal to the next kept one
		// (removed lines are Bcc fields and their continuations; the next
		// kept line starts a field of another name or ends the block).
		if j < len(out) && bytes.Equal(line, out[j]) {
			j++
			continue
		}
		text := strings.TrimRight(string(line), "\r\n")
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].Value += text
			continue
		}
		name, value, _ := strings.Cut(text, ":")
		fields = append(fields, Field{Name: strings.TrimRight(name, " \t\r"), Value: value})
	}
	for i := range fields {
		fields[i].Value = strings.TrimLeft(fields[i].Value, " \t")
	}
	return fields
}
