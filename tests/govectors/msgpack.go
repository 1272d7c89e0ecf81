package main

// msgpack helpers using the gossip dialect: a zero-value codec.MsgpackHandle with
// TimeNotBuiltin=true, exactly as memberlist's encode() and serf's encodeMessage() build it.

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

func gossipHandle(canonical bool) *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.TimeNotBuiltin = true
	h.Canonical = canonical
	return h
}

// body is the msgpack encoding of v. Go's real encoder writes map entries in random
// iteration order; when v holds a map with more than one entry, body sorts the keys
// (Canonical) so that go_vectors.json stays deterministic, and such vectors are marked
// "exact": false. Nothing else changes: struct fields are always written sorted by name.
func body(v interface{}) []byte {
	var out []byte
	h := gossipHandle(hasMultiKeyMap(reflect.ValueOf(v)))
	if err := codec.NewEncoderBytes(&out, h).Encode(v); err != nil {
		panic(err)
	}
	return out
}

// encodeMsg is [type byte] + msgpack(v), memberlist's encode() / serf's encodeMessage().
func encodeMsg(t byte, v interface{}) []byte {
	return append([]byte{t}, body(v)...)
}

// decodeFrom decodes one msgpack value from b into out and returns how many bytes it used.
func decodeFrom(b []byte, out interface{}) (int, error) {
	d := codec.NewDecoderBytes(b, gossipHandle(false))
	if err := d.Decode(out); err != nil {
		return 0, err
	}
	return d.NumBytesRead(), nil
}

// decodeAll decodes b into out and fails unless every byte was used.
func decodeAll(b []byte, out interface{}) error {
	n, err := decodeFrom(b, out)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%d trailing bytes after msgpack value", len(b)-n)
	}
	return nil
}

// hasMultiKeyMap reports whether v holds a Go map with more than one entry anywhere, i.e.
// whether Go's encoding of v is not byte-deterministic.
func hasMultiKeyMap(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Interface, reflect.Ptr:
		return !v.IsNil() && hasMultiKeyMap(v.Elem())
	case reflect.Map:
		if v.Len() > 1 {
			return true
		}
		it := v.MapRange()
		for it.Next() {
			if hasMultiKeyMap(it.Value()) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return false
		}
		for i := 0; i < v.Len(); i++ {
			if hasMultiKeyMap(v.Index(i)) {
				return true
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && hasMultiKeyMap(v.Field(i)) {
				return true
			}
		}
	}
	return false
}

const maxSafeInt = 1 << 53

func hexBytes(b []byte) interface{} {
	if b == nil {
		return nil
	}
	return map[string]string{"hex": hex.EncodeToString(b)}
}

// toFields renders a Go value for the JSON "fields" object: []byte as {"hex": ...} (null for
// nil), strings as JSON strings when valid UTF-8 else {"hex": ...}, integers as numbers
// (strings beyond +-2^53), structs as objects keyed by Go field name, nil slices/maps/pointers
// as null.
func toFields(v reflect.Value) interface{} {
	switch v.Kind() {
	case reflect.Interface, reflect.Ptr:
		if v.IsNil() {
			return nil
		}
		return toFields(v.Elem())
	case reflect.Bool:
		return v.Bool()
	case reflect.String:
		if s := v.String(); utf8.ValidString(s) {
			return s
		}
		return hexBytes([]byte(v.String()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i := v.Int(); i > maxSafeInt || i < -maxSafeInt {
			return strconv.FormatInt(i, 10)
		}
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if u := v.Uint(); u > maxSafeInt {
			return strconv.FormatUint(u, 10)
		}
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return hexBytes(v.Bytes())
		}
		out := make([]interface{}, v.Len())
		for i := range out {
			out[i] = toFields(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]interface{}{}
		it := v.MapRange()
		for it.Next() {
			k := it.Key().String()
			if !utf8.ValidString(k) {
				panic("map key is not valid UTF-8: " + strconv.Quote(k))
			}
			out[k] = toFields(it.Value())
		}
		return out
	case reflect.Struct:
		out := map[string]interface{}{}
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() {
				out[f.Name] = toFields(v.Field(i))
			}
		}
		return out
	}
	panic("toFields: unsupported kind " + v.Kind().String())
}
