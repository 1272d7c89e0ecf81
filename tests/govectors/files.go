package main

// Snapshot and keyring file samples, written the way serf v0.11.0 writes those files:
// serf/snapshot.go formats every snapshot line with fmt.Sprintf (an alive line's address with
// net.TCPAddr.String), and serf's writeKeyringFile writes the base64 keys, primary first, with
// json.MarshalIndent(keys, "", "  ") and no trailing newline.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strings"
)

type snapshotVector struct {
	Name string `json:"name"`
	Text string `json:"text"`
	// what a replay must give (rejoin_after_leave false): name -> address, and the clocks
	Alive      map[string]string `json:"alive"`
	Clock      uint64            `json:"clock"`
	EventClock uint64            `json:"event_clock"`
	QueryClock uint64            `json:"query_clock"`
	Left       bool              `json:"left"`
}

type keyringVector struct {
	Name    string   `json:"name"`
	KeysHex []string `json:"keys_hex"`
	Text    string   `json:"text"`
}

// snapshotWriter mirrors the recording side of serf's Snapshotter, one line per call.
type snapshotWriter struct {
	b strings.Builder
	v snapshotVector
}

func newSnapshot(name string) *snapshotWriter {
	return &snapshotWriter{v: snapshotVector{Name: name, Alive: map[string]string{}}}
}

func (w *snapshotWriter) alive(name string, ip net.IP, port int) {
	addr := net.TCPAddr{IP: ip, Port: port}
	fmt.Fprintf(&w.b, "alive: %s %s\n", name, addr.String())
	w.v.Alive[name] = addr.String()
	w.v.Left = false
}

func (w *snapshotWriter) notAlive(name string) {
	fmt.Fprintf(&w.b, "not-alive: %s\n", name)
	delete(w.v.Alive, name)
}

func (w *snapshotWriter) clock(n uint64) { fmt.Fprintf(&w.b, "clock: %d\n", n); w.v.Clock = n }
func (w *snapshotWriter) eventClock(n uint64) {
	fmt.Fprintf(&w.b, "event-clock: %d\n", n)
	w.v.EventClock = n
}
func (w *snapshotWriter) queryClock(n uint64) {
	fmt.Fprintf(&w.b, "query-clock: %d\n", n)
	w.v.QueryClock = n
}

func (w *snapshotWriter) leave() {
	w.b.WriteString("leave\n")
	w.v.Alive = map[string]string{}
	w.v.Clock, w.v.EventClock, w.v.QueryClock, w.v.Left = 0, 0, 0, true
}

func (w *snapshotWriter) done() snapshotVector {
	w.v.Text = w.b.String()
	return w.v
}

func snapshotVectors() []snapshotVector {
	var out []snapshotVector

	w := newSnapshot("snapshot-members-and-clocks")
	w.alive("node-a", net.IP{10, 0, 0, 1}, 7946)
	w.clock(1)
	w.alive("node-b", net.IP{10, 0, 0, 2}, 7946)
	w.clock(2)
	w.alive("node-c", net.ParseIP("fd00::3"), 7946)
	w.clock(3)
	w.eventClock(4)
	w.queryClock(2)
	w.notAlive("node-b")
	w.clock(4)
	w.queryClock(5)
	w.eventClock(9)
	out = append(out, w.done())

	w = newSnapshot("snapshot-odd-addresses")
	w.alive("mapped", net.ParseIP("::ffff:1.2.3.4"), 7946) // 16-byte form of an IPv4 address
	w.alive("v6-full", net.ParseIP("2001:db8:1:2:3:4:5:6"), 65535)
	w.alive("v6-zeros", net.ParseIP("2001:db8::1"), 1)
	w.alive("a node with spaces", net.IP{127, 0, 0, 1}, 0)
	w.alive("no-ip", nil, 7946)
	w.alive("bad-ip", net.IP{1, 2, 3}, 7946)
	w.clock(18446744073709551615)
	out = append(out, w.done())

	w = newSnapshot("snapshot-leave-then-rejoin")
	w.alive("node-a", net.IP{10, 0, 0, 1}, 7946)
	w.clock(7)
	w.eventClock(3)
	w.leave()
	w.clock(8)
	out = append(out, w.done())

	w = newSnapshot("snapshot-left")
	w.alive("node-a", net.IP{10, 0, 0, 1}, 7946)
	w.queryClock(2)
	w.leave()
	out = append(out, w.done())
	return out
}

func keyringVectors() []keyringVector {
	cases := []struct {
		name string
		keys [][]byte
	}{
		{"keyring-one-16", [][]byte{key(16)}},
		{"keyring-primary-32-then-16-24", [][]byte{key(32), key(16), key(24)}},
	}
	var out []keyringVector
	for _, c := range cases {
		encoded := make([]string, len(c.keys))
		hexes := make([]string, len(c.keys))
		for i, k := range c.keys {
			encoded[i] = base64.StdEncoding.EncodeToString(k)
			hexes[i] = fmt.Sprintf("%x", k)
		}
		text, err := json.MarshalIndent(encoded, "", "  ")
		if err != nil {
			panic(err)
		}
		out = append(out, keyringVector{c.name, hexes, string(text)})
	}
	return out
}
