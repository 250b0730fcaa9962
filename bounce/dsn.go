package bounce

import (
	"bufio"
	"io"
	"strings"
)

// maxStatusPart bounds a delivery-status or feedback-report part.
const maxStatusPart = 1 << 20

// statusReader reads a machine-readable part, at most maxStatusPart bytes.
func statusReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(io.LimitReader(r, maxStatusPart), maxLine)
}

// deliveryStatus reads a message/delivery-status part (RFC 3464 §2.1):
// the per-message fields, then one block per recipient.
func (p *parser) deliveryStatus(r io.Reader) error {
	br := statusReader(r)
	first := true
	for {
		fs, eof, err := readBlock(br, nil)
		if err != nil {
			return readErr("delivery-status part", err)
		}
		switch {
		case len(fs) == 0:
			// extra empty lines between blocks
		case first && fs.get("final-recipient") == "" && fs.get("action") == "":
			p.rep.ReportingMTA = typed(fs.get("reporting-mta"))
			p.rep.EnvelopeID = fs.get("original-envelope-id")
		default:
			if len(p.rep.Recipients) == maxRecipients {
				return malformed("delivery-status part names more than %d recipients", maxRecipients)
			}
			p.rep.Recipients = append(p.rep.Recipients, recipient(fs))
		}
		if len(fs) > 0 {
			first = false
		}
		if eof {
			return nil
		}
	}
}

// recipient reads one per-recipient block.
func recipient(fs fields) Recipient {
	action, _, _ := strings.Cut(strings.ToLower(fs.get("action")), " ")
	return Recipient{
		FinalRecipient:    typed(fs.get("final-recipient")),
		OriginalRecipient: typed(fs.get("original-recipient")),
		Action:            Action(strings.TrimSpace(action)),
		Status:            statusCode(fs.get("status")),
		DiagnosticCode:    typed(fs.get("diagnostic-code")),
		RemoteMTA:         typed(fs.get("remote-mta")),
	}
}

// feedback reads a message/feedback-report part (RFC 5965 §3.1).
func (p *parser) feedback(r io.Reader) error {
	fs, _, err := readBlock(statusReader(r), nil)
	if err != nil {
		return readErr("feedback-report part", err)
	}
	ft := strings.ToLower(fs.get("feedback-type"))
	if ft == "" {
		return malformed("the message/feedback-report part has no Feedback-Type")
	}
	p.rep.Feedback = &Feedback{
		Type:             ft,
		UserAgent:        fs.get("user-agent"),
		Version:          fs.get("version"),
		OriginalMailFrom: strings.Trim(fs.get("original-mail-from"), "<>"),
		ArrivalDate:      fs.get("arrival-date"),
		SourceIP:         fs.get("source-ip"),
		ReportingMTA:     fs.get("reporting-mta"),
	}
	for _, v := range fs.all("original-rcpt-to") {
		p.rep.Feedback.OriginalRcptTo = append(p.rep.Feedback.OriginalRcptTo, strings.Trim(v, "<>"))
	}
	return nil
}

// original reads the header of the returned message. A header that is
// cut short or has overlong lines (returned messages are often
// truncated) leaves what was read; the rest of the part is skipped.
func (p *parser) original(r io.Reader) error {
	fs, _, err := readBlock(bufio.NewReaderSize(r, maxLine), func(n string) bool {
		return n == "message-id" || n == "return-path" || n == "from"
	})
	if err != nil && !isLenient(err) {
		return readErr("returned message", err)
	}
	if p.rep.Original.MessageID == "" {
		p.rep.Original = Original{
			MessageID:  fs.get("message-id"),
			ReturnPath: strings.Trim(fs.get("return-path"), "<>"),
			From:       fs.get("from"),
		}
	}
	return nil
}

// isLenient reports errors a returned message may have without the
// report being wrong.
func isLenient(err error) bool {
	return err == errLongLine || err == errLongBlock
}
