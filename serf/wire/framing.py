"""The framing every codec shares: compound, CRC, label, compression, encryption, streams.

How this works (reference sections 2.4-2.10). A codec only turns one message into
``[type byte][body]`` and back; this module wraps those bytes for the network, exactly as Go
memberlist does, so the ``go`` codec stays byte-compatible:

* **Packets** (UDP), in send order: the message or a *compound* of several
  (``[0x07][N][N x uint16 BE length][parts]``); then, if compression is on and it makes the
  packet smaller, a ``Compress`` message holding the LZW bytes; then optionally a CRC header
  (``[0x0C][crc32 BE]``); then AES-GCM encryption (``[vsn][nonce][ct||tag]``, additional data =
  the label); then the label header (``[0xF4][len][label]``). :meth:`PacketFramer.decode_packet`
  undoes these in reverse: label -> decrypt -> CRC -> dispatch, where compound and compress
  messages recurse.
* **Streams** (TCP; one request per connection): the dialer writes the label header once; then
  the message, compressed when compression is on (always, not only when smaller), then
  encrypted as ``[0x0A][uint32 BE len][blob]`` (additional data = those 5 bytes + label). The
  reply carries no label header but is sealed with the same label. :class:`StreamReader` is the
  incremental (sans-IO) reader.

Everything here is pure: no sockets, clocks or global randomness. Nonces come from the injected
``token_bytes`` callable of :class:`PacketFramer`.

Which failures raise and which are counted (see :meth:`PacketFramer.decode_packet`): a problem
with the datagram as a whole (label, decryption, CRC, an empty packet, a bad top-level
message) raises :class:`DecodeError`; a bad or truncated part *inside* a compound message is
dropped and counted in :class:`DecodedPacket`, and the other parts are still delivered.
"""

from __future__ import annotations

import struct
from binascii import crc32  # zlib's CRC-32 without loading zlib and libz (memory per agent)
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serf import _speedups
from serf.wire import lzw
from serf.wire.codec import Codec, get_codec
from serf.wire.encryption import (
    ENCRYPT_MSG,
    STREAM_HEADER_SIZE,
    Buffer,
    TokenBytes,
    decrypt_payload,
    encrypt_payload,
    encrypt_stream_frame,
    encryption_overhead,
    stream_frame_length,
)
from serf.wire.errors import DecodeError, EncodeError
from serf.wire.keyring import Keyring
from serf.wire.messages import Compress, MemberlistMessage, Message
from serf.wire.stream_sizer import sizer_for

__all__ = [
    "COMPOUND_HEADER_OVERHEAD",
    "COMPOUND_MSG",
    "COMPOUND_PART_OVERHEAD",
    "COMPRESS_MSG",
    "CompoundSplitter",
    "HAS_CRC_MSG",
    "HAS_LABEL_MSG",
    "LABEL_MAX_SIZE",
    "LZW_ALGO",
    "MAX_COMPOUND_PARTS",
    "MAX_COMPOUND_PART_SIZE",
    "MAX_NESTING",
    "PACKET_TYPES",
    "DecodedPacket",
    "PacketFramer",
    "StreamMessage",
    "StreamReader",
    "StreamRejected",
    "add_crc",
    "add_label",
    "label_overhead",
    "make_compound",
    "make_compounds",
    "split_compound",
    "strip_crc",
    "strip_label",
]

COMPOUND_MSG = 7
COMPRESS_MSG = 9
HAS_CRC_MSG = 12
HAS_LABEL_MSG = 244
#: The longest label a header can carry.
LABEL_MAX_SIZE = 255
#: A compound message holds at most 255 parts (the count is one byte).
MAX_COMPOUND_PARTS = 255
#: Each part's length is a uint16.
MAX_COMPOUND_PART_SIZE = 0xFFFF
#: Type byte + count byte (memberlist's ``compoundHeaderOverhead``).
COMPOUND_HEADER_OVERHEAD = 2
#: The uint16 length of each part (memberlist's ``compoundOverhead``).
COMPOUND_PART_OVERHEAD = 2
#: memberlist's ``lzwAlgo``: the only compression algorithm.
LZW_ALGO = 0
#: How many compound/compress layers a packet may nest before it is refused.
MAX_NESTING = 4
#: The message types Go's packet handler accepts (everything else is "not supported").
PACKET_TYPES = frozenset({0, 1, 2, 3, 4, 5, 7, 8, 9, 11})
_PLAIN_PACKET_TYPES = PACKET_TYPES - {COMPOUND_MSG, COMPRESS_MSG}

_CRC_HEADER_SIZE = 5

#: ``split(compound) -> (parts, truncated, skipped)``: see :meth:`PacketFramer.decode_packet`.
CompoundSplitter = Callable[[bytes], tuple[list[bytes], int, int]]


# ------------------------------------------------------------------------------------------
# compound
# ------------------------------------------------------------------------------------------


def make_compound(parts: Sequence[bytes]) -> bytes:
    """``[0x07][N][N x uint16 BE length][parts...]`` for 1 to 255 encoded messages.

    Raises :class:`EncodeError` for no parts, more than 255, or a part of 65,536 bytes or more.
    """
    n = len(parts)
    if not 1 <= n <= MAX_COMPOUND_PARTS:
        raise EncodeError(f"a compound message holds 1 to 255 parts, got {n}")
    sizes = [len(p) for p in parts]
    for size in sizes:
        if size > MAX_COMPOUND_PART_SIZE:
            raise EncodeError(f"a compound part is at most 65535 bytes, got {size}")
    return bytes((COMPOUND_MSG, n)) + struct.pack(f">{n}H", *sizes) + b"".join(parts)


def make_compounds(parts: Sequence[bytes]) -> list[bytes]:
    """Compound messages holding ``parts`` in order, 255 at most in each (none for no parts)."""
    return [
        make_compound(parts[i : i + MAX_COMPOUND_PARTS])
        for i in range(0, len(parts), MAX_COMPOUND_PARTS)
    ]


def split_compound(buf: Buffer) -> tuple[list[bytes], int]:
    """The parts of a compound message (``buf`` starts with its 0x07 type byte) and the number
    of parts truncated.

    A part whose declared length runs past the end of ``buf`` is truncated: it and every later
    part are dropped and counted. ``N = 0`` yields no parts. Raises :class:`DecodeError` when
    ``buf`` is not a compound message or is too short for the count byte or the length table.
    Bytes after the last part are ignored, as Go does.
    """
    total = len(buf)
    if total == 0 or buf[0] != COMPOUND_MSG:
        raise DecodeError("not a compound message")
    if total < 2:
        raise DecodeError("missing compound length byte")
    n = buf[1]
    offset = 2 + 2 * n
    if total < offset:
        raise DecodeError("truncated compound length table")
    # a bytes slice is one copy; other buffers go through a memoryview
    src: Any = buf if type(buf) is bytes else memoryview(buf)
    parts: list[bytes] = []
    for i, size in enumerate(struct.unpack_from(f">{n}H", src, 2)):
        end = offset + size
        if end > total:
            return parts, n - i
        parts.append(bytes(src[offset:end]))
        offset = end
    return parts, 0


# ------------------------------------------------------------------------------------------
# CRC
# ------------------------------------------------------------------------------------------


def add_crc(buf: bytes) -> bytes:
    """``[0x0C][crc32 IEEE of buf, uint32 BE][buf]``."""
    return bytes((HAS_CRC_MSG,)) + (crc32(buf) & 0xFFFFFFFF).to_bytes(4, "big") + buf


def strip_crc(buf: Buffer) -> bytes:
    """The bytes a CRC header protects, after checking them.

    Raises :class:`DecodeError` when ``buf`` has no CRC header or the checksum does not match.
    """
    if len(buf) < _CRC_HEADER_SIZE or buf[0] != HAS_CRC_MSG:
        raise DecodeError("missing CRC header")
    view = memoryview(buf)
    expected = int.from_bytes(view[1:_CRC_HEADER_SIZE], "big")
    inner = bytes(view[_CRC_HEADER_SIZE:])
    actual = crc32(inner) & 0xFFFFFFFF
    if actual != expected:
        raise DecodeError(f"invalid checksum: got {actual:08x}, expected {expected:08x}")
    return inner


# ------------------------------------------------------------------------------------------
# label
# ------------------------------------------------------------------------------------------


def _label_bytes(label: bytes | str) -> bytes:
    raw = label.encode("utf-8") if isinstance(label, str) else bytes(label)
    if len(raw) > LABEL_MAX_SIZE:
        raise EncodeError(f"label is too long: {len(raw)} bytes, at most {LABEL_MAX_SIZE}")
    return raw


def label_overhead(label: bytes | str) -> int:
    """Bytes the label header adds to each packet: 0 without a label, else ``2 + len``."""
    raw = _label_bytes(label)
    return 2 + len(raw) if raw else 0


def add_label(buf: bytes, label: bytes | str) -> bytes:
    """``[0xF4][len][label][buf]``; ``buf`` unchanged for an empty label.

    Raises :class:`EncodeError` for a label longer than 255 bytes (UTF-8 for a ``str``).
    """
    raw = _label_bytes(label)
    if not raw:
        return buf
    return bytes((HAS_LABEL_MSG, len(raw))) + raw + buf


def strip_label(buf: Buffer) -> tuple[bytes, bytes]:
    """``(label, rest)``; ``(b"", buf)`` when ``buf`` has no label header.

    Raises :class:`DecodeError` for a zero-length label header or a truncated one.
    """
    if len(buf) == 0 or buf[0] != HAS_LABEL_MSG:
        return b"", bytes(buf)
    if len(buf) < 2:
        raise DecodeError("cannot decode label; packet has been truncated")
    size = buf[1]
    if size < 1:
        raise DecodeError("label header cannot be empty when present")
    if len(buf) < 2 + size:
        raise DecodeError("cannot decode label; packet has been truncated")
    view = memoryview(buf)
    return bytes(view[2 : 2 + size]), bytes(view[2 + size :])


# ------------------------------------------------------------------------------------------
# packets
# ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class DecodedPacket:
    """What :meth:`PacketFramer.decode_packet` got out of one datagram.

    ``messages`` are in packet order. ``truncated`` counts compound parts cut off by the end of
    their buffer; ``dropped`` counts parts inside a compound that could not be decoded, with the
    reason for each in ``errors``. ``label`` is the label the datagram was accepted under and
    ``decrypted`` says whether it was encrypted. ``skipped`` counts the parts the ``split`` of
    :meth:`PacketFramer.decode_packet` left out.
    """

    messages: list[MemberlistMessage] = field(default_factory=list)
    truncated: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    label: bytes = b""
    decrypted: bool = False
    skipped: int = 0


class _Budget:
    """Decompressed bytes one datagram may still produce, across all its compress layers."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class PacketFramer:
    """The framing of one node, configured once: encodes and decodes packets and streams.

    * ``codec``: the :class:`~serf.wire.Codec` (or its name) for message bodies.
    * ``keyring``: encryption is on when it holds at least one key (it may change later: key
      rotation is seen at once). ``encryption_version`` 1 (default) or 0 (protocol 1 peers).
    * ``label``: the cluster label (bytes or str, at most 255 bytes); ``b""`` for none.
    * ``compression``: LZW-compress packets (when smaller) and streams (always).
    * ``gossip_verify_incoming``: when False, a packet that does not decrypt is read as
      plaintext and unencrypted streams are accepted (for rolling encryption out).
    * ``gossip_verify_outgoing``: when False, everything is sent unencrypted.
    * ``skip_inbound_label_check``: inbound traffic must carry no label header (the transport
      strips it) and the configured label is used for decryption.
    * ``token_bytes``: the nonce source, ``token_bytes(n) -> n random bytes``; inject it (a
      seeded one in simulations). When omitted, ``secrets.token_bytes``.
    * ``max_decompressed_bytes``: the decompression limit of one stream message and the total
      decompression budget of one datagram (40 MiB, memberlist's ``maxDecompressedBytes``).
    """

    __slots__ = (
        "codec",
        "compression",
        "encryption_version",
        "gossip_verify_incoming",
        "gossip_verify_outgoing",
        "keyring",
        "label",
        "max_decompressed_bytes",
        "max_nesting",
        "skip_inbound_label_check",
        "token_bytes",
    )

    def __init__(
        self,
        codec: Codec | str = "lpe",
        *,
        keyring: Keyring | None = None,
        label: bytes | str = b"",
        encryption_version: int = 1,
        compression: bool = True,
        gossip_verify_incoming: bool = True,
        gossip_verify_outgoing: bool = True,
        skip_inbound_label_check: bool = False,
        token_bytes: TokenBytes | None = None,
        max_decompressed_bytes: int = lzw.MAX_DECOMPRESSED_BYTES,
        max_nesting: int = MAX_NESTING,
    ) -> None:
        try:
            label_raw = _label_bytes(label)
        except EncodeError as exc:
            raise ValueError(f"label: {exc}") from None
        if encryption_version not in (0, 1):
            raise ValueError(f"encryption_version must be 0 or 1, got {encryption_version!r}")
        if max_decompressed_bytes < 1:
            raise ValueError("max_decompressed_bytes must be positive")
        if max_nesting < 1:
            raise ValueError("max_nesting must be at least 1")
        self.codec: Codec = get_codec(codec)
        self.keyring = keyring
        self.label: bytes = label_raw
        self.encryption_version = encryption_version
        self.compression = compression
        self.gossip_verify_incoming = gossip_verify_incoming
        self.gossip_verify_outgoing = gossip_verify_outgoing
        self.skip_inbound_label_check = skip_inbound_label_check
        if token_bytes is None:
            # The one convenience default: the OS's CSPRNG. Imported here, not at module level,
            # so that importing the framing pulls in no randomness (secrets imports random).
            import secrets

            token_bytes = secrets.token_bytes
        self.token_bytes: TokenBytes = token_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        self.max_nesting = max_nesting
        if compression:
            # the LZW twin now, not on the first packet: an agent compresses its first gossip
            # after a join, where importing it cost each agent ~0.6 ms of the join's CPU; it
            # costs 68 KiB that every agent in a cluster pays anyway
            _speedups.load("lzw")

    # -- configuration views -------------------------------------------------------------

    @property
    def encryption_enabled(self) -> bool:
        """True when the keyring holds a key (memberlist's ``EncryptionEnabled``)."""
        return self.keyring is not None and self.keyring.enabled

    @property
    def encrypts_outgoing(self) -> bool:
        """True when outgoing packets and streams are encrypted."""
        return self.gossip_verify_outgoing and self.encryption_enabled

    @property
    def packet_overhead(self) -> int:
        """Bytes to keep free in the UDP budget for the label and encryption (CRC and
        compression are not counted, as in memberlist)."""
        overhead = label_overhead(self.label)
        if self.encrypts_outgoing:
            overhead += encryption_overhead(self.encryption_version)
        return overhead

    def _primary_key(self) -> bytes:
        key = self.keyring.primary_key if self.keyring is not None else None
        if key is None:  # pragma: no cover - guarded by encrypts_outgoing
            raise EncodeError("encryption is on but the keyring is empty")
        return key

    def _compress(self, payload: bytes) -> bytes:
        return self.codec.encode(Compress(algo=LZW_ALGO, buf=_speedups.lzw.compress(payload)))

    # -- packets ---------------------------------------------------------------------------

    def encode_packet(self, payload: bytes, *, crc: bool) -> bytes:
        """Frame an encoded message or compound as one datagram.

        Compress (if on and smaller), add a CRC header if ``crc`` (peers known to speak
        protocol 5), encrypt (if on), then put the label header in front.
        """
        buf = bytes(payload)
        if self.compression:
            compressed = self._compress(buf)
            if len(compressed) < len(buf):
                buf = compressed
        if crc:
            buf = add_crc(buf)
        if self.encrypts_outgoing:
            buf = encrypt_payload(
                self.encryption_version, self._primary_key(), buf, self.label, self.token_bytes
            )
        return add_label(buf, self.label)

    def encode_message(self, message: Message, *, crc: bool) -> bytes:
        """:meth:`encode_packet` of ``codec.encode(message)``."""
        return self.encode_packet(self.codec.encode(message), crc=crc)

    def decode_packet(
        self, datagram: Buffer, split: CompoundSplitter | None = None
    ) -> DecodedPacket:
        """Unwrap one datagram: label -> decrypt -> CRC -> messages.

        ``split`` replaces :func:`split_compound` for the packet's own compound message (not
        for one nested in it): ``split(buf) -> (parts, truncated, skipped)``, where the parts
        it leaves out (counted in ``skipped``) are not decoded; the memberlist core passes
        one that leaves out gossip it already knows (``serf.memberlist.skim``).

        Raises :class:`DecodeError` when the datagram as a whole is unusable:

        * the label header is truncated or empty, the label differs from ours ("discarding
          packet with unacceptable label"), or a label header arrives although
          ``skip_inbound_label_check`` is set ("unexpected double packet label header");
        * encryption is on, ``gossip_verify_incoming`` is set and the payload does not
          decrypt ("no installed keys could decrypt the message", a bad version, too short);
        * the CRC does not match;
        * nothing is left after these ("missing message type byte");
        * the top-level message is bad: an unsupported type, a codec error, a broken compound
          header, a compress message that does not decompress, or nesting deeper than
          ``max_nesting`` compound/compress layers.

        A part of a compound message that is truncated or cannot be decoded (for the reasons
        in the last item) does not raise: it is counted in the result, and the other parts
        are delivered.
        """
        label, buf = strip_label(datagram)
        if self.skip_inbound_label_check:
            if label:
                raise DecodeError("unexpected double packet label header")
            label = self.label
        if label != self.label:
            raise DecodeError(f"discarding packet with unacceptable label {label!r}")
        result = DecodedPacket(label=label)
        if self.encryption_enabled:
            assert self.keyring is not None
            try:
                buf = decrypt_payload(self.keyring, buf, label)
                result.decrypted = True
            except DecodeError:
                if self.gossip_verify_incoming:
                    raise
                # As memberlist: without verification, treat it as plaintext.
        if len(buf) >= _CRC_HEADER_SIZE and buf[0] == HAS_CRC_MSG:
            buf = strip_crc(buf)
        self._dispatch(buf, result, _Budget(self.max_decompressed_bytes), 0, True, split)
        return result

    def _dispatch(
        self,
        buf: bytes,
        result: DecodedPacket,
        budget: _Budget,
        depth: int,
        top: bool,
        split: CompoundSplitter | None = None,
    ) -> None:
        try:
            if not buf:
                raise DecodeError("missing message type byte")
            kind = buf[0]
            if kind in (COMPOUND_MSG, COMPRESS_MSG):
                if depth >= self.max_nesting:
                    raise DecodeError(
                        f"packet nests more than {self.max_nesting} compound/compress layers"
                    )
                if kind == COMPOUND_MSG:
                    if split is not None and top:
                        parts, truncated, skipped = split(buf)
                        result.skipped += skipped
                    else:
                        parts, truncated = split_compound(buf)
                    result.truncated += truncated
                    decode = self.codec.decode
                    messages = result.messages
                    for part in parts:
                        # the common part (a plain message) inline; the rest as any part
                        if part and part[0] in _PLAIN_PACKET_TYPES:
                            try:
                                messages.append(decode(part))
                            except DecodeError as exc:
                                result.dropped += 1
                                result.errors.append(str(exc))
                        else:
                            self._dispatch(part, result, budget, depth + 1, False)
                else:
                    inner = self._decompress(buf, budget.left)
                    budget.left -= len(inner)
                    # The decompressed bytes stand in for this message (top-level or not).
                    self._dispatch(inner, result, budget, depth + 1, top, split)
                return
            if kind not in PACKET_TYPES:
                raise DecodeError(f"message type {kind} is not supported in packets")
            result.messages.append(self.codec.decode(buf))
        except DecodeError as exc:
            if top:
                raise
            result.dropped += 1
            result.errors.append(str(exc))

    def _decompress(self, buf: bytes, limit: int) -> bytes:
        msg = self.codec.decode(buf)
        if not isinstance(msg, Compress):
            raise DecodeError(f"expected a compress message, got {type(msg).__name__}")
        if msg.algo != LZW_ALGO:
            raise DecodeError(f"cannot decompress unknown algorithm {msg.algo}")
        out: bytes = _speedups.lzw.decompress(msg.buf or b"", max_size=limit)
        return out

    # -- streams ---------------------------------------------------------------------------

    def encode_stream(self, message_bytes: bytes, *, dialer: bool) -> bytes:
        """Frame one encoded stream message (from ``codec.encode_stream``).

        The label header goes first only when ``dialer`` (the side that opened the
        connection); then compression (always, when on); then the encrypted frame (when on),
        sealed with our label whichever side we are.
        """
        buf = bytes(message_bytes)
        if self.compression:
            buf = self._compress(buf)
        if self.encrypts_outgoing:
            buf = encrypt_stream_frame(
                self.encryption_version, self._primary_key(), buf, self.label, self.token_bytes
            )
        if dialer:
            buf = add_label(buf, self.label)
        return buf

    def encode_stream_message(self, message: MemberlistMessage, *, dialer: bool) -> bytes:
        """:meth:`encode_stream` of ``codec.encode_stream(message)``."""
        return self.encode_stream(self.codec.encode_stream(message), dialer=dialer)

    def stream_reader(self, *, listener: bool) -> StreamReader:
        """A :class:`StreamReader` for one message; ``listener`` for the accepting side."""
        return StreamReader(self, listener=listener)


# ------------------------------------------------------------------------------------------
# stream reading
# ------------------------------------------------------------------------------------------


class StreamRejected(DecodeError):
    """A stream message refused while it was being unwrapped (memberlist's ``readStream``).

    These are the failures Go answers with an ``errResp``: the listener should reply
    ``ErrResp(error=str(exc))`` (framed with ``encode_stream(..., dialer=False)``) before
    closing. They are: an encrypted message with encryption off, a plaintext message with
    encryption required, a frame over 20 MiB, a frame that does not decrypt, a compress message
    that does not decode or decompress, and an empty message. Any other :class:`DecodeError`
    (label problems, the stream closing early, a bad inner message) close without a reply.
    """


@dataclass(slots=True)
class StreamMessage:
    """One message read from a stream.

    ``raw`` is the unwrapped ``[type][body]`` handed to ``codec.decode_stream`` (for a plain,
    uncompressed stream: every byte received so far). ``label`` is the label in force on this
    connection, the one to seal a reply with.
    """

    message: MemberlistMessage
    raw: bytes
    label: bytes
    encrypted: bool
    compressed: bool


class _NeedMore(Exception):
    pass


_LABEL = 0
_BODY = 1
_DONE = 2


class StreamReader:
    """Incremental, sans-IO reader of the one message a stream carries.

    Feed it the bytes as they arrive (:meth:`feed`) and tell it when the peer closed its side
    (:meth:`feed_eof`); it returns a :class:`StreamMessage` once the message is complete.

    * A *listener* reader first peeks for the dialer's label header and checks it (a mismatch
      raises :class:`DecodeError`); a dialer reader (reading the reply) expects none.
    * An encrypted message (``[0x0A][len][blob]``) is complete when ``len`` bytes have arrived;
      ``len`` over 20 MiB is refused at once.
    * A plaintext message has no length prefix: its length is implied by the codec. The
      codec's :mod:`~serf.wire.stream_sizer` reads the lengths the message's headers announce
      as bytes arrive (each byte looked at once), and the message is decoded once, when all of
      it is in; bytes after its end are ignored however TCP split them. A codec without a sizer
      (a user's own) is decoded after each :meth:`feed` instead, a :class:`DecodeError`
      meaning "not complete yet" until :meth:`feed_eof` or ``max_plain_bytes``.

    Errors are raised from :meth:`feed`/:meth:`feed_eof`; :class:`StreamRejected` marks the
    ones to answer with an ``errResp``. After an error every later call raises it again; after
    completion further bytes are ignored.
    """

    __slots__ = (
        "_buf",
        "_error",
        "_framer",
        "_label",
        "_max_plain_bytes",
        "_result",
        "_sizer",
        "_state",
    )

    def __init__(
        self,
        framer: PacketFramer,
        *,
        listener: bool,
        max_plain_bytes: int = lzw.MAX_DECOMPRESSED_BYTES,
    ) -> None:
        self._framer = framer
        self._buf = bytearray()
        self._state = _LABEL if listener else _BODY
        self._label = framer.label
        self._max_plain_bytes = max_plain_bytes
        self._result: StreamMessage | None = None
        self._error: DecodeError | None = None
        self._sizer = sizer_for(framer.codec, max_plain_bytes)

    @property
    def result(self) -> StreamMessage | None:
        """The message, once complete."""
        return self._result

    @property
    def label(self) -> bytes:
        """The label in force on this connection (to seal the reply with)."""
        return self._label

    def feed(self, data: Buffer) -> StreamMessage | None:
        """Add received bytes; the message when it is complete, else None."""
        if self._error is not None:
            raise self._error
        if self._state == _DONE:
            return None
        self._buf += data
        return self._run(eof=False)

    def feed_eof(self) -> StreamMessage:
        """The peer closed its side: the message, or :class:`DecodeError` if incomplete."""
        if self._error is not None:
            raise self._error
        if self._result is not None:
            return self._result
        result = self._run(eof=True)
        if result is None:  # pragma: no cover - _run(eof=True) never returns None
            raise self._fail(DecodeError("stream closed before a complete message"))
        return result

    def _fail(self, exc: DecodeError) -> DecodeError:
        self._error = exc
        return exc

    def _run(self, eof: bool) -> StreamMessage | None:
        try:
            result = self._advance(eof)
        except _NeedMore:
            if eof:
                raise self._fail(DecodeError("stream closed before a complete message")) from None
            return None
        except DecodeError as exc:
            raise self._fail(exc) from None
        self._result = result
        self._state = _DONE
        self._buf = bytearray()
        return result

    def _advance(self, eof: bool) -> StreamMessage:
        framer = self._framer
        buf = self._buf
        if self._state == _LABEL:
            if not buf:
                raise _NeedMore
            label = b""
            if buf[0] == HAS_LABEL_MSG:
                if len(buf) < 2:
                    raise _NeedMore
                size = buf[1]
                if size < 1:
                    raise DecodeError("label header cannot be empty when present")
                if len(buf) < 2 + size:
                    raise _NeedMore
                label = bytes(buf[2 : 2 + size])
                del buf[: 2 + size]
            if framer.skip_inbound_label_check:
                if label:
                    raise DecodeError("unexpected double stream label header")
                label = framer.label
            if label != framer.label:
                raise DecodeError(f"discarding stream with unacceptable label {label!r}")
            self._label = label
            self._state = _BODY
        if not buf:
            raise _NeedMore
        if buf[0] == ENCRYPT_MSG:
            if not framer.encryption_enabled:
                raise StreamRejected("remote state is encrypted and encryption is not configured")
            if len(buf) < STREAM_HEADER_SIZE:
                raise _NeedMore
            header = bytes(buf[:STREAM_HEADER_SIZE])
            try:
                size = stream_frame_length(header)
            except DecodeError as exc:
                raise StreamRejected(str(exc)) from None
            end = STREAM_HEADER_SIZE + size
            if len(buf) < end:
                raise _NeedMore
            assert framer.keyring is not None
            try:
                blob = bytes(buf[STREAM_HEADER_SIZE:end])
                plain = decrypt_payload(framer.keyring, blob, header + self._label)
            except DecodeError as exc:
                raise StreamRejected(str(exc)) from None
            if not plain:
                raise StreamRejected("decrypted message is empty")
            return self._unwrap(plain, encrypted=True, partial=False)
        if framer.encryption_enabled and framer.gossip_verify_incoming:
            raise StreamRejected("encryption is configured but remote state is not encrypted")
        if self._sizer is not None:
            total = self._sizer.extent(buf)
            if total is None or len(buf) < total:
                raise _NeedMore
            return self._unwrap(bytes(buf[:total]), encrypted=False, partial=False)
        partial = not eof
        if len(buf) > self._max_plain_bytes:
            partial = False  # stop waiting: the error (if any) is final
        return self._unwrap(bytes(buf), encrypted=False, partial=partial)

    def _unwrap(self, inner: bytes, *, encrypted: bool, partial: bool) -> StreamMessage:
        framer = self._framer
        compressed = False
        if inner[0] == COMPRESS_MSG:
            try:
                msg = framer.codec.decode(inner)
            except DecodeError as exc:
                if partial:
                    raise _NeedMore from None
                raise StreamRejected(f"failed to decode compressed message: {exc}") from None
            if not isinstance(msg, Compress):
                raise StreamRejected(f"expected a compress message, got {type(msg).__name__}")
            if msg.algo != LZW_ALGO:
                raise StreamRejected(f"cannot decompress unknown algorithm {msg.algo}")
            try:
                inner = _speedups.lzw.decompress(
                    msg.buf or b"", max_size=framer.max_decompressed_bytes
                )
            except DecodeError as exc:
                raise StreamRejected(str(exc)) from None
            if not inner:
                raise StreamRejected("decompressed message is empty")
            if inner[0] == COMPRESS_MSG:
                raise DecodeError("a compressed stream message holds another compressed message")
            compressed = True
            partial = False
        try:
            message = framer.codec.decode_stream(inner)
        except DecodeError:
            if partial:
                raise _NeedMore from None
            raise
        return StreamMessage(message, inner, self._label, encrypted, compressed)
