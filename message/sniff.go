package message

import (
	"bufio"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// extTypes is the table of file name extensions outbox knows, chosen on
// purpose rather than read from the system's mime.types: the type an
// attachment gets must not depend on the machine that composed it.
// Anything else is application/octet-stream unless its content says more.
var extTypes = map[string]string{
	// text (a charset is added only when the content is checked: textType)
	".txt": "text/plain", ".text": "text/plain", ".log": "text/plain",
	".csv": "text/csv", ".tsv": "text/tab-separated-values", ".md": "text/markdown",
	".html": "text/html", ".htm": "text/html", ".css": "text/css",
	".js": "text/javascript", ".mjs": "text/javascript",
	".ics": "text/calendar", ".vcf": "text/vcard",
	// structured text without a charset parameter
	".json": "application/json", ".xml": "application/xml", ".yaml": "application/yaml",
	".yml": "application/yaml", ".rtf": "application/rtf", ".svg": "image/svg+xml",
	// images
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
	".gif": "image/gif", ".webp": "image/webp", ".bmp": "image/bmp", ".tif": "image/tiff",
	".tiff": "image/tiff", ".ico": "image/vnd.microsoft.icon", ".heic": "image/heic",
	".avif": "image/avif",
	// documents
	".pdf": "application/pdf", ".doc": "application/msword",
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xls":  "application/vnd.ms-excel",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".ppt":  "application/vnd.ms-powerpoint",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".epub": "application/epub+zip",
	// archives
	".zip": "application/zip", ".gz": "application/gzip", ".tgz": "application/gzip",
	".tar": "application/x-tar", ".7z": "application/x-7z-compressed", ".rar": "application/vnd.rar",
	".bz2": "application/x-bzip2", ".xz": "application/x-xz", ".zst": "application/zstd",
	// audio and video
	".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".m4a": "audio/mp4",
	".flac": "audio/flac", ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
	".avi": "video/x-msvideo", ".mkv": "video/x-matroska",
	// fonts and the rest
	".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
	".wasm": "application/wasm", ".p7s": "application/pkcs7-signature",
	".bin": "application/octet-stream", ".dat": "application/octet-stream",
	".exe": "application/octet-stream",
}

const octetStream = "application/octet-stream"

// sniff decides the type of an attachment that was given none: by its
// file name's extension (extTypes), else by its content's signature
// (http.DetectContentType, whose binary verdicts are kept and whose text
// verdicts are not: text is only text once checkText says so). Unknown
// and empty content is application/octet-stream. A text/* type gets
// charset=utf-8 only when the whole content was read and is UTF-8 text
// (checkText); otherwise it has no charset, since any guess might be
// wrong (Latin-1 labelled utf-8 shows as garbage).
func sniff(filename string, content io.Reader, br *bufio.Reader) string {
	head, _ := br.Peek(512) // a short or failing read sniffs what it got
	ct, known := extTypes[strings.ToLower(filepath.Ext(filename))]
	if !known {
		if len(head) == 0 {
			return octetStream
		}
		ct, _, _ = strings.Cut(http.DetectContentType(head), ";")
		if !strings.HasPrefix(ct, "text/") {
			return ct
		}
		if checkText(content, br) != textUTF8 {
			return octetStream
		}
		return "text/plain; charset=utf-8"
	}
	if strings.HasPrefix(ct, "text/") && len(head) > 0 && checkText(content, br) == textUTF8 {
		return ct + "; charset=utf-8"
	}
	return ct
}

// textVerdict is what checkText learnt of a content.
type textVerdict int

const (
	textUnknown textVerdict = iota // not all of it could be read
	textUTF8                       // UTF-8 text, no control characters but TAB, CR, LF, FF, ESC
	textOther                      // something else: binary, or text in another charset
)

// checkText reads the whole content to judge it, without consuming it:
// what br holds when the content ends within its buffer, or, when content
// can seek, the rest of it read once and then sought back. Any other
// content is textUnknown. Memory stays constant whatever the size.
func checkText(content io.Reader, br *bufio.Reader) textVerdict {
	head, err := br.Peek(br.Size())
	if err != nil { // the whole content is buffered
		return judge(head, true)
	}
	v := judge(head, false)
	seeker, ok := content.(io.Seeker)
	if v == textOther || !ok {
		return min(v, textUnknown)
	}
	pos, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return textUnknown
	}
	v = judgeStream(head, content)
	if _, err := seeker.Seek(pos, io.SeekStart); err != nil {
		return textUnknown
	}
	return v
}

// judgeStream judges head followed by the rest of r, a buffer at a time,
// carrying a UTF-8 sequence cut by a buffer boundary into the next one.
func judgeStream(head []byte, r io.Reader) textVerdict {
	buf := make([]byte, 4096)
	carry := copy(buf, tail(head))
	for {
		n, err := r.Read(buf[carry:])
		chunk := buf[:carry+n]
		end := err != nil
		if end && err != io.EOF {
			return textUnknown
		}
		if !end {
			carry = len(tail(chunk))
			chunk = chunk[:len(chunk)-carry]
		}
		if judge(chunk, end) == textOther {
			return textOther
		}
		if end {
			return textUTF8
		}
		copy(buf, buf[len(chunk):len(chunk)+carry])
	}
}

// tail returns the incomplete UTF-8 sequence at the end of b, if any.
func tail(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return nil
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-i:]) {
				return nil
			}
			return b[len(b)-i:]
		}
	}
	return nil
}

// judge checks b as text; when b is not the end of the content a UTF-8
// sequence cut at its end is not held against it.
func judge(b []byte, end bool) textVerdict {
	if !end {
		b = b[:len(b)-len(tail(b))]
	}
	if !utf8.Valid(b) {
		return textOther
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != 0x1b || c == 0x7f {
			return textOther
		}
	}
	if end {
		return textUTF8
	}
	return textUnknown
}
