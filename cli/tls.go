package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// validateTLS checks that server.tls_cert_file and server.tls_key_file come
// together. serve loads them.
func (s ServerConfig) validateTLS() error {
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return errors.New("server.tls_cert_file and server.tls_key_file go together: set both or neither")
	}
	return nil
}

// certHolder holds the listener's certificate and swaps it when reload
// succeeds; handshakes under way keep the one they got. It is safe for
// concurrent use.
type certHolder struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// loadCert reads the certificate and key files into a certHolder.
func loadCert(certFile, keyFile string) (*certHolder, error) {
	h := &certHolder{certFile: certFile, keyFile: keyFile}
	if err := h.reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// reload reads the files again; on an error the certificate served stays.
func (h *certHolder) reload() error {
	c, err := tls.LoadX509KeyPair(h.certFile, h.keyFile)
	if err != nil {
		return fmt.Errorf("server.tls_cert_file %s, server.tls_key_file %s: %w", h.certFile, h.keyFile, err)
	}
	h.cert.Store(&c)
	return nil
}

func (h *certHolder) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.cert.Load(), nil
}

// listener wraps ln in TLS with the held certificate. Only HTTP/1.1 is
// offered: the request-framing guard (proxy.GuardFraming) reads the
// plaintext under TLS, and it speaks HTTP/1.
func (h *certHolder) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: h.getCertificate,
		NextProtos:     []string{"http/1.1"},
	})
}

// reloadOnHUP reloads the certificate on every SIGHUP until ctx ends. A
// failed reload is logged and the previous certificate stays.
func (h *certHolder) reloadOnHUP(ctx context.Context, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := h.reload(); err != nil {
				log.Error("TLS certificate reload failed: serving the previous one", "err", err)
				continue
			}
			log.Info("reloaded TLS certificate", "cert_file", h.certFile)
		}
	}
}
