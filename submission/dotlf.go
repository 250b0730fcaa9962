package submission

import "io"

// unstuffLines undoes the dot-stuffing of lines that follow a bare LF,
// which go-smtp's DATA reader leaves alone.
//
// go-smtp takes only CRLF for a line end: it removes the leading dot of a
// line after CRLF, and ends the data only at CRLF "." CRLF. A client that
// writes bare LF line ends (Python's smtplib.sendmail with a bytes
// message does) stuffs a dot after each LF, and that dot stays. outbox
// makes every line end CRLF when it relays (a line is a line whatever its
// ending), so the same rule applies here, before the message is stored: a
// dot that starts a line after a bare LF is removed, as Postfix does with
// smtpd_forbid_bare_newline=normalize and Exim always does. A bare CR is
// no line end for this: clients stuff after LF only (smtplib's quoting is
// a multi-line "^" regexp), and Postfix's normalize takes bare LF alone.
//
// The end of the data is still CRLF "." CRLF only, so no other line
// ending can end a message early (SMTP smuggling): what go-smtp passes on
// is never cut, only stuffing dots are taken out of it.
//
// The filter follows go-smtp's state machine (its dataReader) on the bytes
// it passes on, to know after which line ends it has unstuffed already:
// after a CR that follows another CR, go-smtp does not take the next LF
// as a line end, so the dot after that CRLF is removed here.
func unstuffLines(r io.Reader) io.Reader { return &unstuffer{r: r, smtp: smtpBegin} }

// Where go-smtp's reader was after the last byte it passed on.
const (
	smtpBegin = iota // at the start of a line: it removes a leading dot itself
	smtpCR           // after a CR
	smtpData         // within a line
)

type unstuffer struct {
	r      io.Reader
	smtp   int  // go-smtp's state
	pendCR bool // the last byte was a CR
	start  bool // at the start of a line go-smtp did not see as one
}

func (u *unstuffer) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if u.keep(c) {
			p[j] = c
			j++
		}
	}
	return j, err
}

// keep advances the states over c and reports whether c is passed on.
func (u *unstuffer) keep(c byte) bool {
	if u.pendCR {
		u.pendCR = false
		if c == '\n' {
			// CRLF: go-smtp starts a line, unless this CR followed a CR,
			// which left it within the line.
			u.start = u.smtp != smtpCR
			if u.start {
				u.smtp = smtpData
			} else {
				u.smtp = smtpBegin
			}
			return true
		}
	}
	if u.start {
		u.start = false
		if c == '.' {
			u.smtp = smtpData
			return false
		}
	}
	switch {
	case c == '\r':
		u.pendCR = true
		if u.smtp == smtpCR {
			u.smtp = smtpData // go-smtp: a CR after a CR is data
		} else {
			u.smtp = smtpCR
		}
	case c == '\n':
		u.start, u.smtp = true, smtpData // a bare LF
	default:
		u.smtp = smtpData
	}
	return true
}
