// Package proxyproto reads the PROXY protocol header (versions 1 and 2,
// haproxy.org/download/2.9/doc/proxy-protocol.txt) that a TCP proxy sends
// before the client's bytes, so that a server behind the proxy learns the
// real client address.
//
// Read consumes exactly the header and nothing after it, so the caller can
// go on reading the connection itself. Only trusted proxies may send a
// header: the caller decides whom to ask for one.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is set for a v2 LOCAL command (the proxy's own connection, a
	// health check) and for v1 UNKNOWN: the addresses are not given.
	Local bool
	// Source is the client's address, Destination the address it
	// connected to; zero when Local, or for v2 address families other
	// than TCP or UDP over IPv4 and IPv6.
	Source, Destination netip.AddrPort
}

// v2Signature opens a version 2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Limits: a v1 header is at most 107 bytes (the specification's own
// bound); a v2 header's address block is bounded here to what any proxy
// sends (addresses plus a few TLVs).
const (
	maxV1      = 107
	maxV2Block = 4096
)

// Error describes a malformed header.
type Error struct{ Msg string }

func (e *Error) Error() string { return "proxyproto: " + e.Msg }

func fail(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// Read reads one PROXY header from r, which must be positioned at the
// start of the connection. It reads no byte past the header.
func Read(r io.Reader) (*Header, error) {
	var start [5]byte
	if _, err := io.ReadFull(r, start[:]); err != nil {
		return nil, readErr(err)
	}
	switch {
	case string(start[:]) == "PROXY":
		return readV1(r)
	case bytes.Equal(start[:], v2Signature[:5]):
		return readV2(r)
	}
	return nil, fail("the connection does not start with a PROXY protocol header")
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fail("the connection ended inside the PROXY header")
	}
	return err
}

// readV1 reads the rest of "PROXY TCP4 src dst sport dport\r\n" one byte
// at a time (it is short, and bytes after it are not ours to take).
func readV1(r io.Reader) (*Header, error) {
	line := []byte("PROXY")
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= maxV1 {
			return nil, fail("the v1 header is longer than %d bytes", maxV1)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, readErr(err)
		}
		line = append(line, b[0])
	}
	return parseV1(string(line[:len(line)-2]))
}

func parseV1(line string) (*Header, error) {
	f := strings.Split(line, " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return &Header{Version: 1, Local: true}, nil
	}
	if len(f) != 6 || f[0] != "PROXY" {
		return nil, fail("malformed v1 header %q", line)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, err3 := parsePort(f[4])
	dp, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fail("malformed v1 header %q", line)
	}
	switch f[1] {
	case "TCP4":
		if !src.Is4() || !dst.Is4() {
			return nil, fail("v1 TCP4 header with a non-IPv4 address")
		}
	case "TCP6":
		if !src.Is6() || !dst.Is6() || src.Zone() != "" || dst.Zone() != "" {
			return nil, fail("v1 TCP6 header with a non-IPv6 address")
		}
	default:
		return nil, fail("v1 header with unknown protocol %q", f[1])
	}
	return &Header{Version: 1, Source: netip.AddrPortFrom(src, sp), Destination: netip.AddrPortFrom(dst, dp)}, nil
}

// parsePort accepts a decimal port without leading zeros, as the
// specification writes them.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, errors.New("bad port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// readV2 reads the rest of a binary header: signature, version and
// command, family, length, then the address block.
func readV2(r io.Reader) (*Header, error) {
	var fixed [11]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, readErr(err)
	}
	if !bytes.Equal(fixed[:7], v2Signature[5:]) {
		return nil, fail("bad v2 signature")
	}
	verCmd, fam := fixed[7], fixed[8]
	n := int(binary.BigEndian.Uint16(fixed[9:11]))
	if verCmd>>4 != 2 {
		return nil, fail("v2 header with version %d", verCmd>>4)
	}
	if n > maxV2Block {
		return nil, fail("v2 address block of %d bytes is longer than %d", n, maxV2Block)
	}
	block := make([]byte, n)
	if _, err := io.ReadFull(r, block); err != nil {
		return nil, readErr(err)
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: the block, if any, is ignored
		return &Header{Version: 2, Local: true}, nil
	case 1: // PROXY
	default:
		return nil, fail("v2 header with unknown command %d", verCmd&0xf)
	}
	h := &Header{Version: 2}
	var size int
	switch fam >> 4 {
	case 1:
		size = 4
	case 2:
		size = 16
	default: // AF_UNSPEC, AF_UNIX: no usable address
		h.Local = true
		return h, nil
	}
	if t := fam & 0xf; t != 1 && t != 2 {
		return nil, fail("v2 header with unknown transport %d", t)
	}
	if len(block) < 2*size+4 {
		return nil, fail("v2 address block of %d bytes is too short for its family", len(block))
	}
	src, _ := netip.AddrFromSlice(block[:size])
	dst, _ := netip.AddrFromSlice(block[size : 2*size])
	sp := binary.BigEndian.Uint16(block[2*size:])
	dp := binary.BigEndian.Uint16(block[2*size+2:])
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, nil
}

// Format writes h as a header of its Version, for clients and tests. A
// Local header is written as v1 UNKNOWN or v2 LOCAL.
func (h *Header) Format() []byte {
	if h.Version == 1 {
		if h.Local {
			return []byte("PROXY UNKNOWN\r\n")
		}
		proto := "TCP4"
		if h.Source.Addr().Is6() {
			proto = "TCP6"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", proto, h.Source.Addr(), h.Destination.Addr(),
			h.Source.Port(), h.Destination.Port())
	}
	out := append([]byte{}, v2Signature...)
	if h.Local {
		return append(out, 0x20, 0, 0, 0)
	}
	src, dst := h.Source.Addr().AsSlice(), h.Destination.Addr().AsSlice()
	fam := byte(0x11)
	if len(src) == 16 {
		fam = 0x21
	}
	out = append(out, 0x21, fam)
	out = binary.BigEndian.AppendUint16(out, uint16(2*len(src)+4))
	out = append(append(out, src...), dst...)
	out = binary.BigEndian.AppendUint16(out, h.Source.Port())
	return binary.BigEndian.AppendUint16(out, h.Destination.Port())
}
