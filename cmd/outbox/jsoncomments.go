package main

// stripComments blanks out the // comments of a config file, so that a
// sample config can say what each key does: from // outside a string to
// the end of its line, every byte becomes a space. Nothing else changes,
// not even the length, so a JSON error's offset still points at the right
// place. A // inside a string ("https://…") is kept.
func stripComments(data []byte) []byte {
	out := make([]byte, len(data))
	copy(out, data)
	inString, escaped := false, false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		}
	}
	return out
}
