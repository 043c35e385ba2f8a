package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/sealnet/sealnet/mixnet"
)

type geometryInfo struct {
	Version         uint8  `json:"version"`
	MaxHops         int    `json:"max_hops"`
	RoutingInfoSize int    `json:"routing_info_size"`
	PayloadSize     int    `json:"payload_size"`
	HeaderSize      int    `json:"header_size"`
	PacketSize      int    `json:"packet_size"`
	MessageSize     int    `json:"message_size"`
	SURBSize        int    `json:"surb_size"`
	Hash            string `json:"hash"`
}

func runGeometry(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("geometry", "geometry [--json]", stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	g := mixnet.DefaultGeometry()
	info := geometryInfo{
		Version: g.Version, MaxHops: g.MaxHops, RoutingInfoSize: g.RoutingInfoSize,
		PayloadSize: g.PayloadSize, HeaderSize: g.HeaderSize(), PacketSize: g.PacketSize(),
		MessageSize: g.MessageSize(), SURBSize: g.SURBSize(), Hash: g.Hash().String(),
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(stdout, "packet version     %d (Sphinx, KEM form, X25519; docs/packet.md)\n", info.Version)
	fmt.Fprintf(stdout, "max hops           %d\n", info.MaxHops)
	fmt.Fprintf(stdout, "routing slot       %d bytes per hop\n", info.RoutingInfoSize)
	fmt.Fprintf(stdout, "header             %d bytes\n", info.HeaderSize)
	fmt.Fprintf(stdout, "payload block      %d bytes (%d of message)\n", info.PayloadSize, info.MessageSize)
	fmt.Fprintf(stdout, "packet             %d bytes, every packet on every link\n", info.PacketSize)
	fmt.Fprintf(stdout, "SURB               %d bytes\n", info.SURBSize)
	fmt.Fprintf(stdout, "geometry hash      %s\n", info.Hash)
	return nil
}
