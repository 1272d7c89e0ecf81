package main

// Go structs mirroring the unexported wire structs of hashicorp/memberlist (net.go) and
// hashicorp/serf (serf/messages.go, serf/event.go, serf/keymanager.go, serf/serf.go,
// coordinate/coordinate.go). Field names, Go types and codec tags must stay exactly as in
// those packages: go-msgpack encodes a struct as a map keyed by field name (sorted), and
// the Go type decides the msgpack form (signed vs unsigned ints, raw vs nil for []byte).
// Only the struct type names are free; they are kept close to the originals.

import (
	"net"
	"time"
)

// ---- memberlist ----

// memberlist messageType values (first byte of every memberlist message).
const (
	pingMsg         = 0
	indirectPingMsg = 1
	ackRespMsg      = 2
	suspectMsg      = 3
	aliveMsg        = 4
	deadMsg         = 5
	pushPullMsg     = 6
	compoundMsg     = 7
	userMsg         = 8
	compressMsg     = 9
	encryptMsg      = 10
	nackRespMsg     = 11
	hasCrcMsg       = 12
	errMsg          = 13
	hasLabelMsg     = 244
)

type nodeStateType int // memberlist NodeStateType
type compressionType uint8

type ping struct {
	SeqNo      uint32
	Node       string
	SourceAddr []byte `codec:",omitempty"`
	SourcePort uint16 `codec:",omitempty"`
	SourceNode string `codec:",omitempty"`
}

type indirectPingReq struct {
	SeqNo      uint32
	Target     []byte
	Port       uint16
	Node       string
	Nack       bool
	SourceAddr []byte `codec:",omitempty"`
	SourcePort uint16 `codec:",omitempty"`
	SourceNode string `codec:",omitempty"`
}

type ackResp struct {
	SeqNo   uint32
	Payload []byte
}

type nackResp struct {
	SeqNo uint32
}

type errResp struct {
	Error string
}

type suspect struct {
	Incarnation uint32
	Node        string
	From        string
}

type alive struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}

type dead struct {
	Incarnation uint32
	Node        string
	From        string
}

type pushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type userMsgHeader struct {
	UserMsgLen int
}

type pushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       nodeStateType
	Vsn         []uint8
}

type compress struct {
	Algo compressionType
	Buf  []byte
}

// ---- serf ----

// serf messageType values (first byte of a memberlist user-message payload).
const (
	messageLeaveType            = 0
	messageJoinType             = 1
	messagePushPullType         = 2
	messageUserEventType        = 3
	messageQueryType            = 4
	messageQueryResponseType    = 5
	messageConflictResponseType = 6
	messageKeyRequestType       = 7
	messageKeyResponseType      = 8
	messageRelayType            = 9
)

// serf query filter types.
const (
	filterNodeType = 0
	filterTagType  = 1
)

const tagMagicByte = 0xFF

type LamportTime uint64
type MemberStatus int

type messageJoin struct {
	LTime LamportTime
	Node  string
}

type messageLeave struct {
	LTime LamportTime
	Node  string
	Prune bool
}

type userEvent struct {
	Name    string
	Payload []byte
}

type userEvents struct {
	LTime  LamportTime
	Events []userEvent
}

type messagePushPull struct {
	LTime        LamportTime
	StatusLTimes map[string]LamportTime
	LeftMembers  []string
	EventLTime   LamportTime
	Events       []*userEvents
	QueryLTime   LamportTime
}

type messageUserEvent struct {
	LTime   LamportTime
	Name    string
	Payload []byte
	CC      bool
}

type messageQuery struct {
	LTime       LamportTime
	ID          uint32
	Addr        []byte
	Port        uint16
	SourceNode  string
	Filters     [][]byte
	Flags       uint32
	RelayFactor uint8
	Timeout     time.Duration
	Name        string
	Payload     []byte
}

type filterNode []string

type filterTag struct {
	Tag  string
	Expr string
}

type messageQueryResponse struct {
	LTime   LamportTime
	ID      uint32
	From    string
	Flags   uint32
	Payload []byte
}

type relayHeader struct {
	DestAddr net.UDPAddr
	DestName string
}

type keyRequest struct {
	Key []byte
}

type nodeKeyResponse struct {
	Result     bool
	Message    string
	Keys       []string
	PrimaryKey string
}

// Member is serf's exported Member (the body of a conflict response).
type Member struct {
	Name        string
	Addr        net.IP
	Port        uint16
	Tags        map[string]string
	Status      MemberStatus
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// Coordinate is serf/coordinate's exported Coordinate.
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}
