package netif

// ParseIPv4 splits b, a packet as an IPv4 raw socket hands it over (the
// header included), into p: the IP layer's facts and the VRRP message. It
// reports false for what is not an IPv4 packet. It is the parse the
// socket's read loop runs, exported so the receive path can be fuzzed
// whole, from raw bytes to the state machine (engine/vrrp/router). A
// packet of IP protocol 51 is split as an AH socket splits it.
func ParseIPv4(p *Packet, b []byte) bool {
	return parse4(p, b, len(b) >= 20 && b[9] == ProtocolAH)
}
