package main

// The non-msgpack layers of memberlist's wire format (reference sections 2.4-2.10), written
// from the reference description: compound messages, the CRC and label headers, LZW
// compression and the AES-GCM encrypted blob.

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	nonceSize   = 12
	lzwLitWidth = 8
	lzwAlgo     = 0
)

// compound builds [7][N][N x uint16 BE length][parts...].
func compound(parts [][]byte) []byte {
	out := []byte{compoundMsg, byte(len(parts))}
	for _, p := range parts {
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// withCRC builds [0x0C][crc32 IEEE BE][inner].
func withCRC(inner []byte) []byte {
	out := []byte{hasCrcMsg}
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(inner))
	return append(out, inner...)
}

// labelHeader builds [0xF4][len][label]; an empty label has no header.
func labelHeader(label string) []byte {
	if label == "" {
		return nil
	}
	return append([]byte{hasLabelMsg, byte(len(label))}, label...)
}

// lzwCompress is memberlist's compressPayload minus the msgpack wrapper.
func lzwCompress(plain []byte) []byte {
	var buf bytes.Buffer
	w := lzw.NewWriter(&buf, lzw.LSB, lzwLitWidth)
	if _, err := w.Write(plain); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func lzwDecompress(data []byte) ([]byte, error) {
	r := lzw.NewReader(bytes.NewReader(data), lzw.LSB, lzwLitWidth)
	defer r.Close()
	return io.ReadAll(r)
}

// compressMessage builds [9] + msgpack compress{Algo: 0, Buf: lzw(plain)}.
func compressMessage(plain []byte) []byte {
	return encodeMsg(compressMsg, &compress{Algo: lzwAlgo, Buf: lzwCompress(plain)})
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return gcm
}

// encryptBlob builds [vsn][nonce][ciphertext+tag]; vsn 0 PKCS#7-pads the plaintext to a
// multiple of 16 bytes (always adding 1..16 bytes) before sealing.
func encryptBlob(vsn byte, key, nonce, plain, aad []byte) []byte {
	if len(nonce) != nonceSize {
		panic("bad nonce size")
	}
	src := plain
	if vsn == 0 {
		pad := aes.BlockSize - len(plain)%aes.BlockSize
		src = append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	}
	out := append([]byte{vsn}, nonce...)
	return newGCM(key).Seal(out, nonce, src, aad)
}

// decryptBlob reverses encryptBlob (the vsn is read from the blob).
func decryptBlob(key, blob, aad []byte) ([]byte, error) {
	if len(blob) < 1 {
		return nil, fmt.Errorf("empty blob")
	}
	vsn := blob[0]
	if vsn > 1 {
		return nil, fmt.Errorf("unsupported encryption version %d", vsn)
	}
	min := 1 + nonceSize + 16
	if vsn == 0 {
		min += aes.BlockSize
	}
	if len(blob) < min {
		return nil, fmt.Errorf("blob too short (%d bytes)", len(blob))
	}
	plain, err := newGCM(key).Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], aad)
	if err != nil {
		return nil, err
	}
	if vsn == 0 {
		n := len(plain)
		if n == 0 || int(plain[n-1]) == 0 || int(plain[n-1]) > n {
			return nil, fmt.Errorf("bad PKCS#7 padding")
		}
		plain = plain[:n-int(plain[n-1])]
	}
	return plain, nil
}

// streamFrame builds the stream form [0x0A][uint32 BE blob length][blob]. It returns the
// frame and the AAD used (the 5 header bytes followed by the label).
func streamFrame(vsn byte, key, nonce, plain []byte, label string) (frame, aad []byte) {
	blobLen := 1 + nonceSize + len(plain) + 16
	if vsn == 0 {
		blobLen += aes.BlockSize - len(plain)%aes.BlockSize
	}
	header := binary.BigEndian.AppendUint32([]byte{encryptMsg}, uint32(blobLen))
	aad = append(append([]byte{}, header...), label...)
	blob := encryptBlob(vsn, key, nonce, plain, aad)
	if len(blob) != blobLen {
		panic("blob length mismatch")
	}
	return append(header, blob...), aad
}
