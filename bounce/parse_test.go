package bounce

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func parseFile(t *testing.T, name string) (*Report, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(data), 0)
}

func TestParseReports(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Report
	}{
		{"dsn-failed.eml", Report{
			Kind: KindDSN, ReportingMTA: "mx.example.net", EnvelopeID: "0190a3b2-7c4d-7def-8123-456789abcdef",
			Recipients: []Recipient{{
				FinalRecipient: "bob@example.net", OriginalRecipient: "Bob@Example.NET", Action: ActionFailed, Status: "5.1.1",
				DiagnosticCode: "550 5.1.1 <bob@example.net>: Recipient address    rejected: User unknown", RemoteMTA: "mx.example.net",
			}},
			Original: Original{MessageID: "<original-1@example.com>", ReturnPath: "bounces+abc@bounces.example.com", From: "Alice <alice@example.com>"},
		}},
		{"dsn-multi.eml", Report{
			Kind: KindDSN, ReportingMTA: "relay.example.org",
			Recipients: []Recipient{
				{FinalRecipient: "carol@example.org", Action: ActionFailed, Status: "5.2.2", RemoteMTA: "mx1.example.org",
					DiagnosticCode: "552-5.2.2 The email account that you tried to reach is over quota."},
				{FinalRecipient: "dave@example.org", Action: ActionDelayed, Status: "4.4.1",
					DiagnosticCode: "connect to mx2.example.org[192.0.2.7]:25: Connection timed out"},
				{FinalRecipient: "erin@example.org", Action: ActionDelivered, Status: "2.0.0"},
			},
			Original: Original{MessageID: "<multi@example.com>", ReturnPath: "bounces+xyz@bounces.example.com", From: "news@example.com"},
		}},
		{"dsn-global.eml", Report{
			Kind: KindDSN, ReportingMTA: "mx.example.jp",
			Recipients: []Recipient{{FinalRecipient: "用户@例子.example", Action: ActionFailed, Status: "5.1.1", DiagnosticCode: "550 5.1.1 no such user"}},
			Original:   Original{MessageID: "<utf8@example.com>", From: "=?utf-8?q?J=C3=BCrgen?= <jürgen@example.com>"},
		}},
		{"dsn-wrapped-base64.eml", Report{
			Kind: KindDSN, ReportingMTA: "mail.example.org",
			Recipients: []Recipient{{FinalRecipient: "frank@example.org", Action: ActionFailed, Status: "5.7.1", DiagnosticCode: "550 5.7.1 Message rejected as spam"}},
		}},
		{"arf.eml", Report{
			Kind: KindFeedback,
			Feedback: &Feedback{Type: "abuse", UserAgent: "SomeGenerator/1.0", Version: "1", OriginalMailFrom: "bounces+tok@bounces.example.com",
				OriginalRcptTo: []string{"user@example.net"}, ArrivalDate: "Thu, 8 Mar 2025 14:00:00 EDT", SourceIP: "192.0.2.1", ReportingMTA: "dns; mail.example.net"},
			Original: Original{MessageID: "<8787KJKJ3K4J3K4J3K4J3.mail@example.com>", ReturnPath: "bounces+tok@bounces.example.com", From: "<news@example.com>"},
		}},
		{"qmail.eml", Report{
			Kind: KindNonStandard,
			Recipients: []Recipient{{FinalRecipient: "gone@example.net", Action: ActionFailed, Status: "5.1.1",
				DiagnosticCode: "Remote host said: 550 5.1.1 <gone@example.net>... User unknown"}},
		}},
		{"exim-plain.eml", Report{
			Kind: KindNonStandard,
			Recipients: []Recipient{{FinalRecipient: "nobody@example.org", Action: ActionFailed, Status: "5.0.0",
				DiagnosticCode: "550 No such user here"}},
		}},
	} {
		got, err := parseFile(t, tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.file, *got, tc.want)
			if got.Feedback != nil && tc.want.Feedback != nil {
				t.Errorf("feedback:\n got %+v\nwant %+v", *got.Feedback, *tc.want.Feedback)
			}
		}
		// Read a byte at a time, and with bare LF line ends, it is the same.
		data, _ := os.ReadFile(filepath.Join("testdata", tc.file))
		for name, r := range map[string]io.Reader{
			"one byte at a time": iotest.OneByteReader(bytes.NewReader(data)),
			"LF line ends":       bytes.NewReader(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))),
		} {
			again, err := Parse(r, 0)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("%s, %s: %+v, %v", tc.file, name, again, err)
			}
		}
	}
}

func TestPermanent(t *testing.T) {
	rep, err := parseFile(t, "dsn-multi.eml")
	if err != nil {
		t.Fatal(err)
	}
	var got []bool
	for _, r := range rep.Recipients {
		got = append(got, r.Permanent())
	}
	if !reflect.DeepEqual(got, []bool{true, false, false}) {
		t.Errorf("Permanent: %v", got)
	}
	if (&Recipient{Action: ActionFailed, Status: "4.4.7"}).Permanent() {
		t.Error("a failed recipient with a 4.x.x status counts as permanent")
	}
}

func TestParseRefusals(t *testing.T) {
	for file, tc := range map[string]struct {
		want error
		says string
	}{
		"not-autoreply.eml":    {ErrNotReport, "neither a DSN nor an ARF report"},
		"not-mdn.eml":          {ErrNotReport, `"disposition-notification"`},
		"not-spam.eml":         {ErrNotReport, "neither a DSN nor an ARF report"},
		"bad-truncated.eml":    {ErrMalformed, "truncated"},
		"bad-no-status.eml":    {ErrMalformed, "without a message/delivery-status part"},
		"bad-no-recipient.eml": {ErrMalformed, "names no recipient"},
		"bad-no-boundary.eml":  {ErrMalformed, "without a boundary"},
		"bad-arf-no-type.eml":  {ErrMalformed, "no Feedback-Type"},
		"bad-garbage.bin":      {ErrMalformed, ""},
	} {
		rep, err := parseFile(t, file)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || rep != nil {
			t.Errorf("%s: %v, %v; want %v saying %q", file, rep, err, tc.want, tc.says)
		}
	}
	for name, in := range map[string]string{
		"empty":         "",
		"blank":         "\r\n\r\n",
		"binary header": "\x00\x01\x02:\xff\r\n\r\n\x00",
		"long line":     "From: " + strings.Repeat("x", 20<<10) + "\r\n\r\n",
	} {
		if _, err := Parse(strings.NewReader(in), 0); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotReport) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every prefix of a report is refused cleanly (or, once the closing
// boundary is in, parsed), never a panic.
func TestEveryTruncation(t *testing.T) {
	for _, file := range []string{"dsn-failed.eml", "dsn-wrapped-base64.eml", "arf.eml"} {
		data, _ := os.ReadFile(filepath.Join("testdata", file))
		whole, err := Parse(bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		end := bytes.LastIndex(data, []byte("--\r\n"))
		for n := range len(data) {
			rep, err := Parse(bytes.NewReader(data[:n]), 0)
			switch {
			case err == nil && n < end && whole.Kind != KindNonStandard:
				t.Fatalf("%s cut at %d of %d: accepted %+v", file, n, len(data), rep)
			case err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotReport):
				t.Fatalf("%s cut at %d: %v", file, n, err)
			}
		}
	}
}
