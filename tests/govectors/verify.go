package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
)

// verifyInput is what the Python side writes; go_vectors.json itself also fits (extra
// keys are ignored), which makes `verify < ../vectors/go_vectors.json` a self-test.
type verifyInput struct {
	LZW []struct {
		Name     string `json:"name"`
		PlainHex string `json:"plain_hex"`
		LZWHex   string `json:"lzw_hex"`
	} `json:"lzw"`
	Encryption []struct {
		Name     string `json:"name"`
		Vsn      int    `json:"vsn"`
		KeyHex   string `json:"key_hex"`
		AADHex   string `json:"aad_hex"`
		PlainHex string `json:"plain_hex"`
		BlobHex  string `json:"blob_hex"`
	} `json:"encryption"`
	Messages []struct {
		Name   string `json:"name"`
		GoType string `json:"go_type"`
		Hex    string `json:"hex"`
	} `json:"messages"`
}

type verifier struct{ passed, failed, skipped int }

func (v *verifier) check(section, name string, err error) {
	if err != nil {
		v.failed++
		fmt.Printf("FAIL %s %s: %v\n", section, name, err)
		return
	}
	v.passed++
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Errorf("bad hex %q...: %v", s[:min(len(s), 16)], err))
	}
	return b
}

func verify(r io.Reader) bool {
	var in verifyInput
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		fmt.Printf("FAIL input: %v\n", err)
		fmt.Println("verify: 0 passed, 1 failed")
		return false
	}
	v := &verifier{}
	for _, t := range in.LZW {
		v.check("lzw", t.Name, func() (err error) {
			defer recoverInto(&err)
			got, err := lzwDecompress(unhex(t.LZWHex))
			if err != nil {
				return fmt.Errorf("Go's compress/lzw reader: %v", err)
			}
			if want := unhex(t.PlainHex); !bytes.Equal(got, want) {
				return fmt.Errorf("decompressed to %d bytes %s, want %d bytes", len(got), short(got), len(want))
			}
			return nil
		}())
	}
	for _, t := range in.Encryption {
		v.check("encryption", t.Name, func() (err error) {
			defer recoverInto(&err)
			blob := unhex(t.BlobHex)
			if len(blob) == 0 || int(blob[0]) != t.Vsn {
				return fmt.Errorf("blob does not start with vsn %d", t.Vsn)
			}
			got, err := decryptBlob(unhex(t.KeyHex), blob, unhex(t.AADHex))
			if err != nil {
				return err
			}
			if want := unhex(t.PlainHex); !bytes.Equal(got, want) {
				return fmt.Errorf("decrypted to %s, want %s", short(got), short(want))
			}
			return nil
		}())
	}
	for _, t := range in.Messages {
		segs, err := func() (s []segment, err error) {
			defer recoverInto(&err)
			return roundTrip(t.GoType, unhex(t.Hex))
		}()
		if err == errUnknownType {
			v.skipped++
			continue
		}
		if err == nil {
			err = compareSegments(segs)
		}
		v.check("message", t.Name+" ("+t.GoType+")", err)
	}
	if v.skipped > 0 {
		fmt.Printf("skipped %d messages of unknown go_type\n", v.skipped)
	}
	fmt.Printf("verify: %d passed, %d failed\n", v.passed, v.failed)
	return v.failed == 0
}

func recoverInto(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("panic: %v", r)
	}
}

func short(b []byte) string {
	if len(b) > 24 {
		return hex.EncodeToString(b[:24]) + "..."
	}
	return hex.EncodeToString(b)
}

var errUnknownType = fmt.Errorf("unknown go_type")

// A segment is one piece of a message: the input bytes and Go's re-encoding of them.
// msgpack segments may differ in the order of map entries when the value holds a Go map
// with several keys (Go itself writes those in random order).
type segment struct {
	in, out []byte
	multi   bool
}

func opaque(b []byte) segment { return segment{in: b, out: b} }

// decodeSegment decodes one msgpack value at the start of b into ptr and re-encodes it.
func decodeSegment(b []byte, ptr interface{}, all bool) (segment, int, error) {
	n, err := decodeFrom(b, ptr)
	if err == nil && all && n != len(b) {
		err = fmt.Errorf("%d trailing bytes after msgpack value", len(b)-n)
	}
	if err != nil {
		return segment{}, 0, fmt.Errorf("Go's msgpack decoder: %v", err)
	}
	return segment{in: b[:n], out: body(ptr), multi: hasMultiKeyMapPtr(ptr)}, n, nil
}

func hasMultiKeyMapPtr(ptr interface{}) bool { return hasMultiKeyMap(reflect.ValueOf(ptr)) }

// roundTrip splits a message into prefix bytes and msgpack values, decoding each value
// into the mirrored Go struct and re-encoding it.
func roundTrip(goType string, raw []byte) ([]segment, error) {
	need := func(t byte) error {
		if len(raw) == 0 || raw[0] != t {
			return fmt.Errorf("does not start with type byte %d", t)
		}
		return nil
	}
	switch goType {
	case "relay":
		if err := need(messageRelayType); err != nil {
			return nil, err
		}
		var hdr relayHeader
		hs, n, err := decodeSegment(raw[1:], &hdr, false)
		if err != nil {
			return nil, err
		}
		rest := raw[1+n:]
		if len(rest) == 0 {
			return nil, fmt.Errorf("no inner message after relay header")
		}
		innerType, ok := serfKindByType(rest[0])
		if !ok {
			return nil, fmt.Errorf("unknown inner serf type %d", rest[0])
		}
		is, _, err := decodeSegment(rest[1:], kinds[innerType].newPtr(), true)
		if err != nil {
			return nil, err
		}
		return []segment{opaque(raw[:1]), hs, opaque(rest[:1]), is}, nil
	case "pushPull":
		if err := need(pushPullMsg); err != nil {
			return nil, err
		}
		var h pushPullHeader
		hs, off, err := decodeSegment(raw[1:], &h, false)
		if err != nil {
			return nil, err
		}
		off++
		segs := []segment{opaque(raw[:1]), hs}
		if h.Nodes < 0 || h.Nodes > len(raw) {
			return nil, fmt.Errorf("bad Nodes %d", h.Nodes)
		}
		for i := 0; i < h.Nodes; i++ {
			var st pushNodeState
			s, n, err := decodeSegment(raw[off:], &st, false)
			if err != nil {
				return nil, fmt.Errorf("node state %d: %v", i, err)
			}
			segs, off = append(segs, s), off+n
		}
		if len(raw)-off != h.UserStateLen {
			return nil, fmt.Errorf("%d bytes of user state, header says %d", len(raw)-off, h.UserStateLen)
		}
		return append(segs, opaque(raw[off:])), nil
	case "userMsg":
		if err := need(userMsg); err != nil {
			return nil, err
		}
		var h userMsgHeader
		hs, n, err := decodeSegment(raw[1:], &h, false)
		if err != nil {
			return nil, err
		}
		if len(raw)-1-n != h.UserMsgLen {
			return nil, fmt.Errorf("%d payload bytes, header says %d", len(raw)-1-n, h.UserMsgLen)
		}
		return []segment{opaque(raw[:1]), hs, opaque(raw[1+n:])}, nil
	}
	k, ok := kinds[goType]
	if !ok {
		return nil, errUnknownType
	}
	if !bytes.HasPrefix(raw, k.prefix) {
		return nil, fmt.Errorf("does not start with %x", k.prefix)
	}
	s, _, err := decodeSegment(raw[len(k.prefix):], k.newPtr(), true)
	if err != nil {
		return nil, err
	}
	return []segment{opaque(raw[:len(k.prefix)]), s}, nil
}

func compareSegments(segs []segment) error {
	off := 0
	for _, s := range segs {
		if !bytes.Equal(s.in, s.out) {
			if s.multi {
				ci, err1 := canonical(s.in)
				co, err2 := canonical(s.out)
				if err1 == nil && err2 == nil && bytes.Equal(ci, co) {
					off += len(s.in)
					continue // same bytes apart from map entry order
				}
			}
			i := 0
			for i < len(s.in) && i < len(s.out) && s.in[i] == s.out[i] {
				i++
			}
			return fmt.Errorf("Go re-encodes differently from byte %d: got %s, Go writes %s",
				off+i, short(s.in[i:]), short(s.out[i:]))
		}
		off += len(s.in)
	}
	return nil
}

// canonical re-serialises one msgpack value with every map's entries sorted by their
// encoded bytes, so two encodings that differ only in map order compare equal.
func canonical(b []byte) ([]byte, error) {
	out, n, err := canonValue(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("trailing bytes")
	}
	return out, err
}

func canonValue(b []byte) ([]byte, int, error) {
	hdr, payload, count, isMap, err := msgpackHead(b)
	if err != nil {
		return nil, 0, err
	}
	if hdr+payload > len(b) {
		return nil, 0, fmt.Errorf("truncated")
	}
	off := hdr + payload
	if count == 0 {
		return b[:off], off, nil
	}
	items := make([][]byte, 0, count)
	for i := 0; i < count; i++ {
		c, n, err := canonValue(b[off:])
		if err != nil {
			return nil, 0, err
		}
		items, off = append(items, c), off+n
	}
	if isMap {
		pairs := make([][]byte, 0, count/2)
		for i := 0; i < count; i += 2 {
			pairs = append(pairs, append(append([]byte{}, items[i]...), items[i+1]...))
		}
		sort.Slice(pairs, func(i, j int) bool { return bytes.Compare(pairs[i], pairs[j]) < 0 })
		items = pairs
	}
	out := append([]byte{}, b[:hdr]...)
	for _, it := range items {
		out = append(out, it...)
	}
	return out, off, nil
}

// msgpackHead reads a msgpack header: its length, the length of the raw data that follows
// it, and the number of nested values (arrays: n, maps: 2n).
func msgpackHead(b []byte) (hdr, payload, count int, isMap bool, err error) {
	if len(b) == 0 {
		return 0, 0, 0, false, fmt.Errorf("truncated")
	}
	c := b[0]
	size := func(width int) int {
		if len(b) < 1+width {
			err = fmt.Errorf("truncated")
			return 0
		}
		switch width {
		case 1:
			return int(b[1])
		case 2:
			return int(binary.BigEndian.Uint16(b[1:]))
		}
		return int(binary.BigEndian.Uint32(b[1:]))
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 1, 0, 0, false, nil
	case c <= 0x8f:
		return 1, 0, 2 * int(c&0x0f), true, nil
	case c <= 0x9f:
		return 1, 0, int(c & 0x0f), false, nil
	case c <= 0xbf:
		return 1, int(c & 0x1f), 0, false, nil
	}
	switch c {
	case 0xc4, 0xd9:
		return 2, size(1), 0, false, err
	case 0xc5, 0xda:
		return 3, size(2), 0, false, err
	case 0xc6, 0xdb:
		return 5, size(4), 0, false, err
	case 0xc7:
		return 3, size(1), 0, false, err
	case 0xc8:
		return 4, size(2), 0, false, err
	case 0xc9:
		return 6, size(4), 0, false, err
	case 0xcc, 0xd0:
		return 2, 0, 0, false, nil
	case 0xcd, 0xd1:
		return 3, 0, 0, false, nil
	case 0xca, 0xce, 0xd2:
		return 5, 0, 0, false, nil
	case 0xcb, 0xcf, 0xd3:
		return 9, 0, 0, false, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return 2, 1 << (c - 0xd4), 0, false, nil
	case 0xdc:
		return 3, 0, size(2), false, err
	case 0xdd:
		return 5, 0, size(4), false, err
	case 0xde:
		return 3, 0, 2 * size(2), true, err
	case 0xdf:
		return 5, 0, 2 * size(4), true, err
	}
	return 0, 0, 0, false, fmt.Errorf("bad msgpack byte %#x", c)
}
