// Command govectors produces msgpack/framing test vectors with the real Go encoders
// (github.com/hashicorp/go-msgpack/v2 v2.1.5, as used by serf and memberlist, and the Go
// stdlib compress/lzw, crypto/aes, crypto/cipher, hash/crc32) so that pyserf's "go" codec
// can be checked byte for byte, and it verifies vectors written by the Python side.
//
// This directory is its own Go module (the repository root has no go.mod), so run it with
// -C (or cd here first). Regenerate the checked-in vectors, from the repository root:
//
//	go -C tests/govectors run . generate > tests/vectors/go_vectors.json
//
// Check Python-made vectors against Go (one line per failure, then
// "verify: N passed, M failed"; exit status 1 on any failure):
//
//	go -C tests/govectors run . verify < our.json
//
// See README.md for the JSON schema.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		usage()
	}
	switch os.Args[1] {
	case "generate":
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", " ")
		if err := enc.Encode(generate()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "verify":
		if !verify(os.Stdin) {
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: govectors generate > go_vectors.json | govectors verify < vectors.json")
	os.Exit(2)
}
