package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"runtime/debug"
	"time"
)

// ---- JSON schema (documented in README.md) ----

type vectorFile struct {
	Generator  string           `json:"generator"`
	Messages   []messageVector  `json:"messages"`
	LZW        []lzwVector      `json:"lzw"`
	Encryption []encVector      `json:"encryption"`
	Compound   []compoundVec    `json:"compound"`
	CRC        []crcVector      `json:"crc"`
	Packets    []packetVector   `json:"packets"`
	Snapshot   []snapshotVector `json:"snapshot"`
	Keyring    []keyringVector  `json:"keyring"`
}

type messageVector struct {
	Name   string      `json:"name"`
	Layer  string      `json:"layer"`
	GoType string      `json:"go_type"`
	Exact  bool        `json:"exact"`
	Hex    string      `json:"hex"`
	Fields interface{} `json:"fields"`
}

type lzwVector struct {
	Name     string `json:"name"`
	PlainHex string `json:"plain_hex"`
	LZWHex   string `json:"lzw_hex"`
}

type encVector struct {
	Name     string `json:"name"`
	Vsn      int    `json:"vsn"`
	KeyHex   string `json:"key_hex"`
	Label    string `json:"label"`
	AADHex   string `json:"aad_hex"`
	PlainHex string `json:"plain_hex"`
	BlobHex  string `json:"blob_hex"`
	Stream   bool   `json:"stream"`
	FrameHex string `json:"frame_hex"`
}

type compoundVec struct {
	Name     string   `json:"name"`
	PartsHex []string `json:"parts_hex"`
	Hex      string   `json:"hex"`
}

type crcVector struct {
	PlainHex string `json:"plain_hex"`
	Hex      string `json:"hex"`
}

type packetVector struct {
	Name     string   `json:"name"`
	Label    string   `json:"label"`
	KeyHex   string   `json:"key_hex"`
	Vsn      int      `json:"vsn"`
	Compress bool     `json:"compress"`
	CRC      bool     `json:"crc"`
	PartsHex []string `json:"parts_hex"`
	Hex      string   `json:"hex"`
}

// ---- deterministic sample data ----

// text returns n bytes of printable ASCII.
func text(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}

// lcgBytes returns n pseudo-random bytes from a fixed 32-bit LCG (Numerical Recipes
// constants), taking the top byte of each state. With mod > 0 each byte is reduced mod mod.
func lcgBytes(n int, seed uint32, mod int) []byte {
	b := make([]byte, n)
	s := seed
	for i := range b {
		s = s*1664525 + 1013904223
		b[i] = byte(s >> 24)
		if mod > 0 {
			b[i] %= byte(mod)
		}
	}
	return b
}

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

var (
	ipv4       = []byte(net.IPv4(127, 0, 0, 1).To4())
	ipv4b      = []byte(net.IPv4(192, 0, 2, 7).To4())
	ipv6       = []byte(net.ParseIP("2001:db8::1"))
	ipv6LL     = []byte(net.ParseIP("fe80::1"))
	ipv4Mapped = []byte(net.ParseIP("127.0.0.1")) // 16 bytes: ::ffff:127.0.0.1
	vsnRef     = []uint8{1, 5, 2, 2, 5, 5}
	vsnSerf    = []uint8{1, 5, 2, 2, 5, 4}
	nonUTF8    = "\xff\xfe\x80node\xc3"
)

// ---- generator ----

type gen struct {
	f     vectorFile
	names map[string]bool
}

func (g *gen) name(n string) string {
	if g.names[n] {
		panic("duplicate vector name " + n)
	}
	g.names[n] = true
	return n
}

func (g *gen) add(name, layer, goType string, exact bool, raw []byte, fields interface{}) {
	g.f.Messages = append(g.f.Messages, messageVector{g.name(name), layer, goType, exact, hex.EncodeToString(raw), fields})
}

// msg adds a simple kind: prefix + msgpack(v).
func (g *gen) msg(name, goType string, v interface{}) []byte {
	k, ok := kinds[goType]
	if !ok {
		panic("unknown kind " + goType)
	}
	if reflect.TypeOf(v) != reflect.TypeOf(k.newPtr()).Elem() {
		panic(fmt.Sprintf("%s: value of type %T for kind %s", name, v, goType))
	}
	raw := append(append([]byte{}, k.prefix...), body(v)...)
	fields := toFields(reflect.ValueOf(v))
	if goType == "filterNode" { // a bare []string in Go; give it a name
		fields = map[string]interface{}{"Nodes": fields}
	}
	g.add(name, k.layer, goType, !hasMultiKeyMap(reflect.ValueOf(v)), raw, fields)
	return raw
}

// relay adds [9] + msgpack(relayHeader) + [inner type] + msgpack(inner).
func (g *gen) relay(name string, addr net.UDPAddr, dest string, innerType string, inner interface{}) {
	k := kinds[innerType]
	raw := append([]byte{messageRelayType}, body(relayHeader{DestAddr: addr, DestName: dest})...)
	raw = append(raw, k.prefix...)
	raw = append(raw, body(inner)...)
	fields := map[string]interface{}{
		"DestAddr":    toFields(reflect.ValueOf(addr)),
		"DestName":    toFields(reflect.ValueOf(dest)),
		"InnerType":   int(k.prefix[0]),
		"InnerGoType": innerType,
		"Inner":       toFields(reflect.ValueOf(inner)),
	}
	g.add(name, "serf", "relay", !hasMultiKeyMap(reflect.ValueOf(inner)), raw, fields)
}

// pushPull adds a whole push/pull stream body: [6] + header + states + user state.
func (g *gen) pushPull(name string, join bool, states []pushNodeState, user []byte, userExact bool) []byte {
	h := pushPullHeader{Nodes: len(states), UserStateLen: len(user), Join: join}
	raw := append([]byte{pushPullMsg}, body(&h)...)
	for i := range states {
		raw = append(raw, body(&states[i])...)
	}
	raw = append(raw, user...)
	fields := map[string]interface{}{
		"Header":    toFields(reflect.ValueOf(h)),
		"States":    toFields(reflect.ValueOf(states)),
		"UserState": hexBytes(user),
	}
	g.add(name, "stream", "pushPull", userExact && !hasMultiKeyMap(reflect.ValueOf(states)), raw, fields)
	return raw
}

// streamUserMsg adds [8] + msgpack(userMsgHeader) + payload.
func (g *gen) streamUserMsg(name string, payload []byte) {
	h := userMsgHeader{UserMsgLen: len(payload)}
	raw := append(append([]byte{userMsg}, body(&h)...), payload...)
	fields := map[string]interface{}{"Header": toFields(reflect.ValueOf(h)), "Payload": hexBytes(payload)}
	g.add(name, "stream", "userMsg", true, raw, fields)
}

func (g *gen) lzw(name string, plain []byte) {
	g.f.LZW = append(g.f.LZW, lzwVector{g.name(name), hex.EncodeToString(plain), hex.EncodeToString(lzwCompress(plain))})
}

var nonceCounter byte

// nextNonce returns a fixed, distinct 12-byte nonce for each encryption vector.
func nextNonce() []byte {
	nonceCounter++
	return seq(nonceSize, nonceCounter*16)
}

func key(size int) []byte { return seq(size, byte(size)) }

func (g *gen) encPacket(name string, vsn byte, k []byte, label string, plain []byte) {
	blob := encryptBlob(vsn, k, nextNonce(), plain, []byte(label))
	g.f.Encryption = append(g.f.Encryption, encVector{
		Name: g.name(name), Vsn: int(vsn), KeyHex: hex.EncodeToString(k), Label: label,
		AADHex: hex.EncodeToString([]byte(label)), PlainHex: hex.EncodeToString(plain),
		BlobHex: hex.EncodeToString(blob), Stream: false,
		FrameHex: hex.EncodeToString(append(labelHeader(label), blob...)),
	})
}

func (g *gen) encStream(name string, vsn byte, k []byte, label string, plain []byte) {
	frame, aad := streamFrame(vsn, k, nextNonce(), plain, label)
	g.f.Encryption = append(g.f.Encryption, encVector{
		Name: g.name(name), Vsn: int(vsn), KeyHex: hex.EncodeToString(k), Label: label,
		AADHex: hex.EncodeToString(aad), PlainHex: hex.EncodeToString(plain),
		BlobHex: hex.EncodeToString(frame[5:]), Stream: true, FrameHex: hex.EncodeToString(frame),
	})
}

func hexAll(parts [][]byte) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = hex.EncodeToString(p)
	}
	return out
}

func (g *gen) compound(name string, parts [][]byte) []byte {
	raw := compound(parts)
	g.f.Compound = append(g.f.Compound, compoundVec{g.name(name), hexAll(parts), hex.EncodeToString(raw)})
	return raw
}

func (g *gen) crc(plain []byte) {
	g.f.CRC = append(g.f.CRC, crcVector{hex.EncodeToString(plain), hex.EncodeToString(withCRC(plain))})
}

// packet layers parts in memberlist's send order (reference 2.9): one part is sent as is,
// several become a compound; then compression (required to shrink it here), CRC,
// encryption (AAD = label) and the label header.
func (g *gen) packet(name, label string, k []byte, vsn byte, doCompress, doCRC bool, parts [][]byte) {
	msg := parts[0]
	if len(parts) > 1 {
		msg = compound(parts)
	}
	if doCompress {
		c := compressMessage(msg)
		if len(c) >= len(msg) {
			panic(name + ": compression does not shrink this packet; Go would send it uncompressed")
		}
		msg = c
	}
	if doCRC {
		msg = withCRC(msg)
	}
	if k != nil {
		msg = encryptBlob(vsn, k, nextNonce(), msg, []byte(label))
	}
	msg = append(labelHeader(label), msg...)
	g.f.Packets = append(g.f.Packets, packetVector{g.name(name), label, hex.EncodeToString(k), int(vsn),
		doCompress, doCRC, hexAll(parts), hex.EncodeToString(msg)})
}

func generatorString() string {
	mp := "github.com/hashicorp/go-msgpack/v2 (version unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hashicorp/go-msgpack/v2" {
				mp = d.Path + " " + d.Version
			}
		}
	}
	empty := lzwCompress(nil)
	clear := "no leading LZW clear code"
	if bytes.Equal(empty, []byte{0x00, 0x03, 0x02}) {
		clear = "leading LZW clear code"
	}
	return fmt.Sprintf("pyserf/govectors; %s %s/%s; %s; compress/lzw LSB litWidth 8 emits a %s (empty input -> %x)",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, mp, clear, empty)
}

func generate() *vectorFile {
	g := &gen{names: map[string]bool{}}
	g.f.Generator = generatorString()
	g.f.Messages = []messageVector{}

	// ---------- memberlist ----------
	pingRef := g.msg("ping-reference", "ping", ping{SeqNo: 1, Node: "b"})
	g.msg("ping-zero", "ping", ping{})
	pingSrc := g.msg("ping-source-ipv4", "ping", ping{SeqNo: 128, Node: "node-a", SourceAddr: ipv4, SourcePort: 7946, SourceNode: "node-b"})
	g.msg("ping-source-ipv6", "ping", ping{SeqNo: 65536, Node: "node-a", SourceAddr: ipv6, SourcePort: 65535, SourceNode: "node-b"})
	g.msg("ping-source-ipv4-mapped", "ping", ping{SeqNo: 4294967295, Node: "node-a", SourceAddr: ipv4Mapped, SourcePort: 128, SourceNode: "n"})
	g.msg("ping-omitempty-empty-nonnil-addr", "ping", ping{SeqNo: 127, Node: "x", SourceAddr: []byte{}})
	g.msg("ping-only-source-port", "ping", ping{SeqNo: 255, SourcePort: 255})
	g.msg("ping-only-source-node", "ping", ping{SeqNo: 256, SourceNode: "me"})
	g.msg("ping-seq-65535", "ping", ping{SeqNo: 65535, Node: text(31)})
	g.msg("ping-node-32", "ping", ping{SeqNo: 2, Node: text(32)})

	g.msg("indirect-ping-ipv4-nack", "indirectPingReq", indirectPingReq{SeqNo: 256, Target: ipv4, Port: 7946, Node: "target",
		Nack: true, SourceAddr: ipv4b, SourcePort: 7947, SourceNode: "me"})
	g.msg("indirect-ping-ipv6-no-source", "indirectPingReq", indirectPingReq{SeqNo: 3, Target: ipv6, Port: 65535, Node: "t6"})
	g.msg("indirect-ping-nil-target", "indirectPingReq", indirectPingReq{})
	g.msg("indirect-ping-ipv4-mapped", "indirectPingReq", indirectPingReq{SeqNo: 65536, Target: ipv4Mapped, Port: 128,
		Node: "t", Nack: true, SourceAddr: ipv4Mapped, SourcePort: 127, SourceNode: "s"})

	coordFresh := Coordinate{Vec: make([]float64, 8), Error: 1.5, Adjustment: 0, Height: 10e-6}
	ackPayload := append([]byte{1}, body(&coordFresh)...)
	g.msg("ack-nil-payload", "ackResp", ackResp{SeqNo: 1})
	g.msg("ack-empty-payload", "ackResp", ackResp{SeqNo: 2, Payload: []byte{}})
	ackCoord := g.msg("ack-coordinate-payload", "ackResp", ackResp{SeqNo: 128, Payload: ackPayload})
	for _, n := range []int{31, 32, 255, 256, 65536} {
		g.msg(fmt.Sprintf("ack-payload-%d", n), "ackResp", ackResp{SeqNo: uint32(n), Payload: lcgBytes(n, uint32(n), 0)})
	}
	nack0 := g.msg("nack-0", "nackResp", nackResp{SeqNo: 0})
	g.msg("nack-max", "nackResp", nackResp{SeqNo: 4294967295})
	g.msg("err-empty", "errResp", errResp{})
	g.msg("err-text", "errResp", errResp{Error: "remote state is encrypted and encryption is not configured"})
	g.msg("err-non-utf8", "errResp", errResp{Error: nonUTF8})
	g.msg("err-70000", "errResp", errResp{Error: text(70000)})

	susp := g.msg("suspect-basic", "suspect", suspect{Incarnation: 1, Node: "node-a", From: "node-b"})
	g.msg("suspect-inc-128-non-utf8", "suspect", suspect{Incarnation: 128, Node: nonUTF8, From: ""})
	g.msg("suspect-names-255-256", "suspect", suspect{Incarnation: 65535, Node: text(255), From: text(256)})

	aliveRef := g.msg("alive-reference", "alive", alive{Incarnation: 1, Node: "a", Addr: ipv4, Port: 7946, Vsn: vsnRef})
	tagsEmpty := append([]byte{tagMagicByte}, body(map[string]string{})...)
	tagsWeb := append([]byte{tagMagicByte}, body(map[string]string{"role": "web"})...)
	aliveSerf := g.msg("alive-serf-empty-tags", "alive", alive{Incarnation: 2, Node: "serf-1", Addr: ipv4, Port: 7946, Meta: tagsEmpty, Vsn: vsnSerf})
	g.msg("alive-ipv6", "alive", alive{Incarnation: 65536, Node: "v6", Addr: ipv6, Port: 65535, Meta: tagsWeb, Vsn: vsnSerf})
	g.msg("alive-ipv4-mapped", "alive", alive{Incarnation: 4294967295, Node: "mapped", Addr: ipv4Mapped, Port: 128, Meta: tagsWeb, Vsn: vsnSerf})
	g.msg("alive-nil-addr-vsn-empty-meta", "alive", alive{Node: "", Meta: []byte{}})
	g.msg("alive-meta-512", "alive", alive{Incarnation: 256, Node: text(255), Addr: ipv4b, Port: 255,
		Meta: append([]byte{tagMagicByte}, body(map[string]string{"k": text(505)})...), Vsn: vsnSerf})
	g.msg("alive-node-256-port-127", "alive", alive{Incarnation: 127, Node: text(256), Addr: ipv4, Port: 127, Vsn: []uint8{}})

	deadLeave := g.msg("dead-leave", "dead", dead{Incarnation: 3, Node: "node-a", From: "node-a"})
	g.msg("dead-by-other", "dead", dead{Incarnation: 4294967295, Node: "node-a", From: "node-b"})

	g.msg("compress-lzw-ping", "compress", compress{Algo: lzwAlgo, Buf: lzwCompress(pingRef)})
	g.msg("compress-lzw-empty", "compress", compress{Algo: lzwAlgo, Buf: lzwCompress(nil)})
	g.msg("compress-nil-buf", "compress", compress{})
	g.msg("compress-empty-buf-algo-255", "compress", compress{Algo: 255, Buf: []byte{}})

	// ---------- serf ----------
	g.msg("leave-basic", "messageLeave", messageLeave{LTime: 1, Node: "a"})
	g.msg("leave-prune-max-ltime", "messageLeave", messageLeave{LTime: 1<<64 - 1, Node: "node-a", Prune: true})
	g.msg("leave-ltime-2p53-plus-1", "messageLeave", messageLeave{LTime: 1<<53 + 1, Node: "b"})
	g.msg("join-basic", "messageJoin", messageJoin{LTime: 128, Node: "node-a"})
	g.msg("join-empty-node", "messageJoin", messageJoin{})
	g.msg("join-ltime-widths", "messageJoin", messageJoin{LTime: 1 << 32, Node: nonUTF8})
	g.msg("join-ltime-65536", "messageJoin", messageJoin{LTime: 65536, Node: "j"})

	ring := make([]*userEvents, 512)
	ring[1] = &userEvents{LTime: 1, Events: []userEvent{{Name: "deploy", Payload: []byte("v1")}, {Name: "x"}}}
	ring[300] = &userEvents{LTime: 300, Events: []userEvent{{Name: "empty", Payload: []byte{}}}}
	ring[511] = &userEvents{LTime: 511}
	ring[2] = &userEvents{LTime: 2, Events: []userEvent{}}
	ppRing := messagePushPull{LTime: 10, StatusLTimes: map[string]LamportTime{"node-a": 9}, LeftMembers: []string{"gone"},
		EventLTime: 512, Events: ring, QueryLTime: 1 << 32}
	g.msg("serf-pushpull-nil-fields", "messagePushPull", messagePushPull{})
	g.msg("serf-pushpull-empty-collections", "messagePushPull", messagePushPull{StatusLTimes: map[string]LamportTime{},
		LeftMembers: []string{}, Events: []*userEvents{}})
	serfState := g.msg("serf-pushpull-ring", "messagePushPull", ppRing)
	multi := ppRing
	multi.StatusLTimes = map[string]LamportTime{"node-a": 9, "node-b": 128, "node-c": 1 << 40}
	multi.LeftMembers = []string{"gone", "also-gone"}
	multi.Events = []*userEvents{nil, ring[1], nil}
	g.msg("serf-pushpull-multi-status", "messagePushPull", multi)

	userEv := g.msg("user-event-basic", "messageUserEvent", messageUserEvent{LTime: 1, Name: "deploy", Payload: []byte("v1")})
	g.msg("user-event-cc-nil-payload", "messageUserEvent", messageUserEvent{LTime: 127, Name: "e", CC: true})
	g.msg("user-event-empty-payload", "messageUserEvent", messageUserEvent{LTime: 255, Name: "", Payload: []byte{}})
	for _, n := range []int{31, 32, 255, 256} {
		g.msg(fmt.Sprintf("user-event-name-%d", n), "messageUserEvent", messageUserEvent{LTime: LamportTime(n), Name: text(n), Payload: []byte{byte(n)}})
	}
	g.msg("user-event-non-utf8-name", "messageUserEvent", messageUserEvent{LTime: 1<<64 - 1, Name: nonUTF8, Payload: []byte{0xc0}})
	g.msg("user-event-multibyte-utf8", "messageUserEvent", messageUserEvent{LTime: 2, Name: "déploiement-日本", Payload: []byte("ü")})

	fNode := append([]byte{filterNodeType}, body(filterNode{"node-a", "node-b"})...)
	fTag := append([]byte{filterTagType}, body(filterTag{Tag: "role", Expr: "^web"})...)
	g.msg("query-basic-5s", "messageQuery", messageQuery{LTime: 5, ID: 1234567, Addr: ipv4, Port: 7946, SourceNode: "node-a",
		Timeout: 5 * time.Second, Name: "ping"})
	g.msg("query-filters-500ms", "messageQuery", messageQuery{LTime: 6, ID: 128, Addr: ipv4b, Port: 7946, SourceNode: "node-a",
		Filters: [][]byte{fNode, fTag}, Flags: 1, RelayFactor: 3, Timeout: 500 * time.Millisecond, Name: "load", Payload: []byte("now")})
	g.msg("query-empty-filters-ipv6", "messageQuery", messageQuery{LTime: 1 << 40, ID: 4294967295, Addr: ipv6, Port: 65535,
		SourceNode: "v6", Filters: [][]byte{}, Flags: 3, RelayFactor: 255, Timeout: 0, Name: "_serf_ping", Payload: []byte{}})
	g.msg("query-ipv4-mapped-timeout-128", "messageQuery", messageQuery{LTime: 128, ID: 256, Addr: ipv4Mapped, Port: 128,
		SourceNode: "m", Flags: 2, RelayFactor: 128, Timeout: 128, Name: "q", Filters: [][]byte{fTag}})
	timeouts := []time.Duration{127, 32767, 32768, 1<<31 - 1, 1 << 31, -1, -32, -33, -128, -129, -200, -32768, -32769, -5 * time.Second, 1<<63 - 1, -1 << 63}
	for _, t := range timeouts {
		g.msg(fmt.Sprintf("query-timeout-%d", int64(t)), "messageQuery", messageQuery{LTime: 1, ID: 1, Addr: ipv4, Port: 1,
			SourceNode: "n", Timeout: t, Name: "t"})
	}

	respAck := messageQueryResponse{LTime: 5, ID: 1234567, From: "node-b", Flags: 1}
	respPayload := messageQueryResponse{LTime: 6, ID: 128, From: "node-c", Payload: []byte("pong")}
	g.msg("query-response-ack", "messageQueryResponse", respAck)
	g.msg("query-response-payload", "messageQueryResponse", respPayload)
	g.msg("query-response-empty-payload-max", "messageQueryResponse", messageQueryResponse{LTime: 1<<64 - 1, ID: 4294967295,
		From: nonUTF8, Flags: 4294967295, Payload: []byte{}})

	g.msg("key-request-list-empty-key", "keyRequest", keyRequest{Key: []byte{}})
	g.msg("key-request-nil-key", "keyRequest", keyRequest{})
	for _, n := range []int{16, 24, 32} {
		g.msg(fmt.Sprintf("key-request-%d", n), "keyRequest", keyRequest{Key: key(n)})
	}
	g.msg("key-response-install-ok", "nodeKeyResponse", nodeKeyResponse{Result: true})
	g.msg("key-response-list", "nodeKeyResponse", nodeKeyResponse{Result: true,
		Keys:       []string{base64.StdEncoding.EncodeToString(key(32)), base64.StdEncoding.EncodeToString(key(16))},
		PrimaryKey: base64.StdEncoding.EncodeToString(key(32))})
	g.msg("key-response-error-empty-keys", "nodeKeyResponse", nodeKeyResponse{Message: "No keyring to modify (encryption not enabled)", Keys: []string{}})

	g.relay("relay-ipv4-response", net.UDPAddr{IP: ipv4, Port: 7946}, "node-a", "messageQueryResponse", respPayload)
	g.relay("relay-ipv6-zone-ack", net.UDPAddr{IP: ipv6LL, Port: 65536, Zone: "eth0"}, "node-b", "messageQueryResponse", respAck)
	g.relay("relay-nil-ip-negative-port", net.UDPAddr{Port: -1}, "", "messageQueryResponse", respAck)
	g.relay("relay-ipv4-mapped-port-128", net.UDPAddr{IP: ipv4Mapped, Port: 128}, nonUTF8, "messageQueryResponse", respPayload)

	// ---------- conflict response member, tags, filters, coordinates ----------
	g.msg("conflict-member-basic", "Member", &Member{Name: "node-a", Addr: ipv4, Port: 7946, Tags: map[string]string{"role": "web"},
		Status: 1, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4})
	g.msg("conflict-member-nil", "Member", (*Member)(nil))
	g.msg("conflict-member-empty-tags", "Member", &Member{Name: "n", Addr: ipv4Mapped, Tags: map[string]string{}})
	g.msg("conflict-member-nil-tags-ipv6-status-200", "Member", &Member{Name: "v6", Addr: ipv6, Port: 65535, Status: 200,
		ProtocolMin: 128, ProtocolMax: 255, ProtocolCur: 127})
	g.msg("conflict-member-multi-tags-status-neg", "Member", &Member{Name: "m", Addr: ipv4, Port: 128, Status: -1,
		Tags: map[string]string{"role": "db", "dc": "east", "rack": "r1"}, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 5,
		DelegateMin: 2, DelegateMax: 5, DelegateCur: 5})

	g.msg("tags-empty", "tags", map[string]string{})
	g.msg("tags-role", "tags", map[string]string{"role": "web"})
	g.msg("tags-empty-key-value", "tags", map[string]string{"": ""})
	g.msg("tags-long-value", "tags", map[string]string{"k": text(256)})
	g.msg("tags-non-utf8-value", "tags", map[string]string{"bin": nonUTF8})
	g.msg("tags-multi", "tags", map[string]string{"role": "web", "dc": "east", "rack": text(32)})

	g.msg("filter-node-two", "filterNode", filterNode{"node-a", "node-b"})
	g.msg("filter-node-one-long", "filterNode", filterNode{text(32)})
	g.msg("filter-node-empty", "filterNode", filterNode{})
	g.msg("filter-node-nil", "filterNode", filterNode(nil))
	g.msg("filter-tag", "filterTag", filterTag{Tag: "role", Expr: "^web"})
	g.msg("filter-tag-empty", "filterTag", filterTag{})
	g.msg("filter-tag-non-utf8", "filterTag", filterTag{Tag: nonUTF8, Expr: "\xff+"})

	g.msg("coordinate-fresh", "Coordinate", coordFresh)
	g.msg("coordinate-values", "Coordinate", Coordinate{Vec: []float64{0.001, -0.002, 1e-9, 123.456, -1e300, 5e-324, 0.1, 0},
		Error: 0.25, Adjustment: -0.0003, Height: 0.0001})
	g.msg("coordinate-nil-vec", "Coordinate", Coordinate{Error: 1.5, Height: 10e-6})
	g.msg("coordinate-empty-vec", "Coordinate", Coordinate{Vec: []float64{}, Error: 1})
	g.msg("coordinate-3d", "Coordinate", Coordinate{Vec: []float64{1, 2, 3}, Error: 0.5, Adjustment: 1e-3, Height: 2.5e-5})

	// ---------- stream bodies ----------
	g.pushPull("stream-pushpull-empty", false, nil, nil, true)
	self := pushNodeState{Name: "serf-1", Addr: ipv4, Port: 7946, Meta: tagsWeb, Incarnation: 1, State: 0, Vsn: vsnSerf}
	ppJoin := g.pushPull("stream-pushpull-join-serf-state", true, []pushNodeState{self}, serfState, true)
	g.pushPull("stream-pushpull-states", false, []pushNodeState{
		self,
		{Name: "v6", Addr: ipv6, Port: 65535, Meta: tagsEmpty, Incarnation: 65536, State: 1, Vsn: vsnSerf},
		{Name: "mapped", Addr: ipv4Mapped, Port: 128, Incarnation: 4294967295, State: 2, Vsn: vsnRef},
		{Name: "left", State: 3},
	}, nil, true)
	g.pushPull("stream-pushpull-signed-state-values", false, []pushNodeState{
		{Name: "s200", State: 200}, {Name: "s-1", State: -1}, {Name: "s-33", State: -33}, {Name: "s-200", State: -200},
	}, []byte{}, true)
	many := make([]pushNodeState, 128)
	for i := range many {
		many[i] = pushNodeState{Name: fmt.Sprintf("node-%03d", i), Addr: []byte{127, 0, 0, byte(i)}, Port: 7946,
			Meta: tagsEmpty, Incarnation: uint32(i), State: nodeStateType(i % 4), Vsn: vsnSerf}
	}
	g.pushPull("stream-pushpull-128-nodes-200-user-bytes", true, many, lcgBytes(200, 7, 0), true)
	g.streamUserMsg("stream-user-msg-empty", nil)
	g.streamUserMsg("stream-user-msg-hello", []byte("hello"))
	g.streamUserMsg("stream-user-msg-300", lcgBytes(300, 3, 0))

	// ---------- compound, CRC ----------
	c1 := g.compound("compound-one", [][]byte{pingRef})
	c2 := g.compound("compound-ping-alive", [][]byte{pingSrc, aliveRef})
	userPkt := append([]byte{userMsg}, userEv...)
	gossip := g.compound("compound-gossip", [][]byte{susp, deadLeave, userPkt, aliveSerf})
	g.compound("compound-empty", [][]byte{})
	g.compound("compound-long-part", [][]byte{encodeMsg(ackRespMsg, &ackResp{SeqNo: 9, Payload: []byte(text(280))}), userPkt})
	nacks := make([][]byte, 255)
	for i := range nacks {
		nacks[i] = encodeMsg(nackRespMsg, &nackResp{SeqNo: uint32(i)})
	}
	g.compound("compound-255-parts", nacks)
	g.compound("compound-nested", [][]byte{c2, nack0, c1})

	g.crc([]byte("123456789"))
	g.crc([]byte{})
	g.crc(pingRef)
	g.crc(gossip)
	g.crc(ackCoord)

	// ---------- LZW ----------
	g.lzw("lzw-empty", nil)
	g.lzw("lzw-a", []byte("a"))
	g.lzw("lzw-ab", []byte("ab"))
	g.lzw("lzw-aaaa", []byte("aaaa"))
	g.lzw("lzw-repetitive-5000", []byte(text(5000)))
	g.lzw("lzw-lcg-random-20000", lcgBytes(20000, 12345, 0))
	g.lzw("lzw-lcg-4-symbols-20000", lcgBytes(20000, 999, 4))
	g.lzw("lzw-zeros-8000", make([]byte, 8000))
	g.lzw("lzw-all-byte-values", seq(256, 0))
	g.lzw("lzw-compound-gossip", gossip)
	g.lzw("lzw-pushpull-stream", ppJoin)

	// ---------- encryption ----------
	for _, vsn := range []byte{1, 0} {
		for _, size := range []int{16, 24, 32} {
			k := key(size)
			g.encPacket(fmt.Sprintf("packet-v%d-aes%d", vsn, size*8), vsn, k, "", withCRC(gossip))
			g.encPacket(fmt.Sprintf("packet-v%d-aes%d-label", vsn, size*8), vsn, k, "prod-cluster", pingSrc)
			g.encStream(fmt.Sprintf("stream-v%d-aes%d", vsn, size*8), vsn, k, "", compressMessage(ppJoin))
			g.encStream(fmt.Sprintf("stream-v%d-aes%d-label", vsn, size*8), vsn, k, "prod-cluster", ppJoin)
		}
	}
	for _, n := range []int{0, 1, 15, 16, 17, 32} {
		g.encPacket(fmt.Sprintf("packet-v0-aes128-plain-%d", n), 0, key(16), "", lcgBytes(n, uint32(n), 0))
	}
	g.encPacket("packet-v1-aes128-plain-0", 1, key(16), "", nil)
	g.encPacket("packet-v1-aes256-label-255", 1, key(32), text(255), pingRef)
	g.encStream("stream-v1-aes256-label-255", 1, key(32), text(255), ppJoin)
	g.encStream("stream-v0-aes128-plain-16", 0, key(16), "", seq(16, 1))

	// ---------- whole packets ----------
	repeatAlive := [][]byte{pingSrc, aliveSerf, aliveRef, aliveSerf, aliveRef}
	g.packet("packet-plain-compound", "", nil, 1, false, false, [][]byte{pingSrc, aliveRef})
	g.packet("packet-crc-single-ping", "", nil, 1, false, true, [][]byte{pingRef})
	g.packet("packet-compress-crc", "", nil, 1, true, true, repeatAlive)
	g.packet("packet-label-only", "dc1", nil, 1, false, false, [][]byte{pingRef})
	g.packet("packet-full-v1-aes256-label", "prod", key(32), 1, true, true, repeatAlive)
	g.packet("packet-v0-aes128-crc-nolabel", "", key(16), 0, false, true, [][]byte{pingSrc, susp, deadLeave})
	g.packet("packet-user-event-v1-aes192-label", "dc1", key(24), 1, true, true,
		[][]byte{append([]byte{userMsg}, encodeMsg(messageUserEventType, &messageUserEvent{LTime: 42, Name: "deploy",
			Payload: []byte(text(36) + text(36) + text(36))})...)})
	g.packet("packet-v1-aes128-compress-nocrc", "", key(16), 1, true, false, repeatAlive)

	// ---------- files ----------
	g.f.Snapshot = snapshotVectors()
	g.f.Keyring = keyringVectors()
	return &g.f
}
