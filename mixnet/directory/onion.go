package directory

import (
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Tor v3 onion addresses (rend-spec-v3 §6, "Encoding onion addresses"):
// base32(PUBKEY ‖ CHECKSUM ‖ VERSION) ‖ ".onion", where PUBKEY is the
// service's 32-byte Ed25519 identity key, VERSION is 0x03 and CHECKSUM is
// the first two bytes of SHA3-256(".onion checksum" ‖ PUBKEY ‖ VERSION).

const (
	onionVersion   = 0x03
	onionIDLen     = 56 // base32 of 35 bytes, no padding
	onionSuffix    = ".onion"
	onionChecksumS = ".onion checksum"
)

var onionEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// OnionHost returns the v3 onion host name ("<56 characters>.onion") of
// the service whose identity key is pub.
func OnionHost(pub ed25519.PublicKey) string {
	b := make([]byte, 0, 35)
	b = append(b, pub...)
	sum := onionChecksum(pub)
	b = append(b, sum[0], sum[1], onionVersion)
	return strings.ToLower(onionEncoding.EncodeToString(b)) + onionSuffix
}

func onionChecksum(pub []byte) [32]byte {
	m := make([]byte, 0, len(onionChecksumS)+len(pub)+1)
	m = append(append(append(m, onionChecksumS...), pub...), onionVersion)
	return sha3.Sum256(m)
}

// CheckOnionHost reports whether host is a well-formed v3 onion host name
// in lowercase, with a valid checksum and version.
func CheckOnionHost(host string) error {
	id, ok := strings.CutSuffix(host, onionSuffix)
	if !ok {
		return errors.New("not a .onion name")
	}
	if len(id) != onionIDLen {
		return fmt.Errorf("onion ID is %d characters, want %d (a v3 onion address)", len(id), onionIDLen)
	}
	if strings.ToLower(id) != id {
		return errors.New("onion ID is not lowercase")
	}
	raw, err := onionEncoding.DecodeString(strings.ToUpper(id))
	if err != nil || len(raw) != 35 {
		return errors.New("onion ID is not base32")
	}
	if raw[34] != onionVersion {
		return fmt.Errorf("onion version %d, want %d", raw[34], onionVersion)
	}
	sum := onionChecksum(raw[:32])
	if raw[32] != sum[0] || raw[33] != sum[1] {
		return errors.New("onion checksum does not match (a typo?)")
	}
	return nil
}

// CheckOnionAddress reports whether a is "<v3 onion host>:port" with a
// port in [1, 65535] written without leading zeros.
func CheckOnionAddress(a string) error {
	if len(a) > len("[]:65535")+onionIDLen+len(onionSuffix) {
		return fmt.Errorf("%d bytes, too long for an onion address", len(a))
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("not host:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || strconv.FormatUint(p, 10) != port {
		return errors.New("port is not a number in [1, 65535] without leading zeros")
	}
	return CheckOnionHost(host)
}
