package cli

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// listenEnv sets serve's listen address, under --listen and over the
// config file's server.host and server.port.
const listenEnv = "LLMGW_LISTEN"

// listenAddr turns a --listen or LLMGW_LISTEN value into a host:port for
// net.Listen: a bare port ("8080") means every interface (":8080").
func listenAddr(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return ":" + s
	}
	return s
}

// listenError explains why the listener on addr could not open. Only a
// port already taken gets the hint about another llmgw.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w (is another llmgw running? pass --listen ADDR or set %s)", err, listenEnv)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w (ports below 1024 need privileges: pick a higher port, or give llmgw CAP_NET_BIND_SERVICE)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w (no interface of this host has that address)", err)
	}
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return fmt.Errorf("%w (want HOST:PORT, :PORT or PORT, got %q)", err, addr)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("%w (the host name does not resolve: listen on an IP address)", err)
	}
	return fmt.Errorf("listen on %s: %w", addr, err)
}
