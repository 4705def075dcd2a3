package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client that sent r, for the request
// log: the connection's peer, or, when the peer is one of trusted (a
// reverse proxy in front of llmgw), the first address of X-Forwarded-For,
// read from the right, that is not itself a trusted proxy. Addresses to
// its left could be anything the client wrote, so they are never believed.
// An entry that is not an IP address ends the walk at the last trusted
// hop.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hop := peer
	fwd := r.Header.Values("X-Forwarded-For")
	for i := len(fwd) - 1; i >= 0; i-- {
		parts := strings.Split(fwd[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return hop.Unmap().String()
			}
			if !isTrusted(a, trusted) {
				return a.Unmap().String()
			}
			hop = a
		}
	}
	return hop.Unmap().String()
}

// clientOf is clientAddr for r, worked out once per request: the
// authentication and the request log both ask.
func (s *Server) clientOf(r *http.Request) string {
	e := entryFrom(r.Context())
	if e.client == "" {
		e.client = clientAddr(r, s.cfg.TrustedProxies)
	}
	return e.client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
