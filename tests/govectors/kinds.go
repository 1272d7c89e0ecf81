package main

// The message kinds ("go_type" values) the generator writes and the verifier understands.
// A simple kind is prefix bytes followed by exactly one msgpack value; "relay", "pushPull"
// and "userMsg" are composite and handled in generate.go / verify.go.

type kind struct {
	layer  string
	prefix []byte             // bytes before the msgpack body
	newPtr func() interface{} // pointer to a zero value of the mirrored Go type
}

var kinds = map[string]kind{
	// memberlist: [type byte] + msgpack
	"ping":            {"memberlist", []byte{pingMsg}, func() interface{} { return new(ping) }},
	"indirectPingReq": {"memberlist", []byte{indirectPingMsg}, func() interface{} { return new(indirectPingReq) }},
	"ackResp":         {"memberlist", []byte{ackRespMsg}, func() interface{} { return new(ackResp) }},
	"suspect":         {"memberlist", []byte{suspectMsg}, func() interface{} { return new(suspect) }},
	"alive":           {"memberlist", []byte{aliveMsg}, func() interface{} { return new(alive) }},
	"dead":            {"memberlist", []byte{deadMsg}, func() interface{} { return new(dead) }},
	"compress":        {"memberlist", []byte{compressMsg}, func() interface{} { return new(compress) }},
	"nackResp":        {"memberlist", []byte{nackRespMsg}, func() interface{} { return new(nackResp) }},
	"errResp":         {"memberlist", []byte{errMsg}, func() interface{} { return new(errResp) }},

	// serf: [serf type byte] + msgpack (7 and 8 are query payloads, not gossip)
	"messageLeave":         {"serf", []byte{messageLeaveType}, func() interface{} { return new(messageLeave) }},
	"messageJoin":          {"serf", []byte{messageJoinType}, func() interface{} { return new(messageJoin) }},
	"messagePushPull":      {"serf", []byte{messagePushPullType}, func() interface{} { return new(messagePushPull) }},
	"messageUserEvent":     {"serf", []byte{messageUserEventType}, func() interface{} { return new(messageUserEvent) }},
	"messageQuery":         {"serf", []byte{messageQueryType}, func() interface{} { return new(messageQuery) }},
	"messageQueryResponse": {"serf", []byte{messageQueryResponseType}, func() interface{} { return new(messageQueryResponse) }},
	"keyRequest":           {"serf", []byte{messageKeyRequestType}, func() interface{} { return new(keyRequest) }},
	"nodeKeyResponse":      {"serf", []byte{messageKeyResponseType}, func() interface{} { return new(nodeKeyResponse) }},

	// [0x06] + msgpack(*Member): the payload of a _serf_conflict query response (nil -> c0)
	"Member": {"conflict-member", []byte{messageConflictResponseType}, func() interface{} { return new(*Member) }},
	// memberlist Meta of a serf node: [0xFF] + msgpack map[string]string
	"tags": {"tags", []byte{tagMagicByte}, func() interface{} { return new(map[string]string) }},
	// one entry of messageQuery.Filters: [filter type] + msgpack
	"filterNode": {"filter", []byte{filterNodeType}, func() interface{} { return new(filterNode) }},
	"filterTag":  {"filter", []byte{filterTagType}, func() interface{} { return new(filterTag) }},
	// bare msgpack Coordinate (the ack payload is [0x01 ping version] + this)
	"Coordinate": {"coordinate", nil, func() interface{} { return new(Coordinate) }},
}

// serfKindByType finds the serf kind for a type byte (used for the message inside a relay).
func serfKindByType(t byte) (string, bool) {
	for name, k := range kinds {
		if k.layer == "serf" && k.prefix[0] == t {
			return name, true
		}
	}
	return "", false
}
