package proxyproto

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name, in string
		want     Header
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 587\r\n",
			Header{Version: 1, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:587")}},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
			Header{Version: 1, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:2")}},
		{"v1 unknown", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", Header{Version: 1, Local: true}},
		{"v2 tcp4", string((&Header{Version: 2, Source: ap("192.0.2.1:1000"), Destination: ap("10.0.0.1:25")}).Format()),
			Header{Version: 2, Source: ap("192.0.2.1:1000"), Destination: ap("10.0.0.1:25")}},
		{"v2 tcp6", string((&Header{Version: 2, Source: ap("[2001:db8::5]:9"), Destination: ap("[::1]:25")}).Format()),
			Header{Version: 2, Source: ap("[2001:db8::5]:9"), Destination: ap("[::1]:25")}},
		{"v2 local", "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00", Header{Version: 2, Local: true}},
		{"v2 with TLVs", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0f" + "\xc0\x00\x02\x01" + "\x0a\x00\x00\x01" + "\x00\x50\x00\x19" + "\x04\x00\x00",
			Header{Version: 2, Source: ap("192.0.2.1:80"), Destination: ap("10.0.0.1:25")}},
		{"v2 unix", "\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x00", Header{Version: 2, Local: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.in + "EHLO x\r\n")
			h, err := Read(r)
			if err != nil {
				t.Fatal(err)
			}
			if *h != tc.want {
				t.Fatalf("got %+v, want %+v", *h, tc.want)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != "EHLO x\r\n" {
				t.Fatalf("Read consumed past the header: %q left", rest)
			}
		})
	}
}

func TestReadRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not proxy":        "EHLO example.com\r\n",
		"empty":            "",
		"v1 truncated":     "PROXY TCP4 192.0.2.1",
		"v1 too long":      "PROXY TCP4 " + strings.Repeat("1", 200) + "\r\n",
		"v1 bad address":   "PROXY TCP4 192.0.2.300 1.2.3.4 1 2\r\n",
		"v1 family":        "PROXY TCP4 ::1 ::2 1 2\r\n",
		"v1 proto":         "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
		"v1 port":          "PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
		"v1 lead zero":     "PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
		"v1 fields":        "PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
		"v2 version":       "\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c" + strings.Repeat("\x00", 12),
		"v2 command":       "\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c" + strings.Repeat("\x00", 12),
		"v2 short block":   "\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x0c" + strings.Repeat("\x00", 12),
		"v2 huge block":    "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",
		"v2 truncated":     "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01",
		"v2 bad sig":       "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00",
		"v2 bad transport": "\r\n\r\n\x00\r\nQUIT\n\x21\x13\x00\x0c" + strings.Repeat("\x00", 12),
	} {
		if h, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted as %+v", name, h)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 587\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add((&Header{Version: 2, Source: netip.MustParseAddrPort("[2001:db8::5]:9"), Destination: netip.MustParseAddrPort("[::1]:25")}).Format())
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0f\xc0\x00\x02\x01\x0a\x00\x00\x01\x00\x50\x00\x19\x04\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := Read(r)
		if err != nil {
			return
		}
		consumed := len(in) - r.Len()
		if consumed > maxV1 && h.Version == 1 || consumed > 16+maxV2Block {
			t.Fatalf("consumed %d bytes", consumed)
		}
		// What was read is what Format writes back (TLVs and UNKNOWN's
		// ignored addresses aside), and it reads again the same.
		again, err := Read(bytes.NewReader(h.Format()))
		if err != nil {
			t.Fatalf("re-reading %+v: %v", h, err)
		}
		if *again != *h {
			t.Fatalf("round trip: %+v became %+v", h, again)
		}
	})
}
