package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a fresh self-signed certificate for 127.0.0.1, named cn,
// and its key to certFile and keyFile, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert
}

// servedCert connects to addr over TLS, trusting roots, and returns the
// common name of the certificate the server presents.
func servedCert(t *testing.T, url string, roots ...*x509.Certificate) string {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true, // a new handshake each time
	}}
	res, err := c.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz over TLS: Status = %d, want 200", res.StatusCode)
	}
	return res.TLS.PeerCertificates[0].Subject.CommonName
}

// No t.Parallel: the test sends SIGHUP to its own process.
func TestServe_TLSServesAndReloadsOnSIGHUP(t *testing.T) {
	// SIGHUP would kill the test process if nothing were listening for it
	// yet; this keeps it caught from the first signal on.
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	one := writeCert(t, certFile, keyFile, "one")
	config := writeFile(t, "tls.yaml", "server:\n  tls_cert_file: "+certFile+"\n  tls_key_file: "+keyFile+"\n")
	srv := startServe(t, newDB(t), "--config", config)
	url := "https://" + strings.TrimPrefix(srv.URL, "http://")

	if got := servedCert(t, url, one); got != "one" {
		t.Fatalf("served %q, want one", got)
	}
	// Plain HTTP on the TLS port gets no answer it could take for one.
	if res, err := http.Get(srv.URL + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}

	two := writeCert(t, certFile, keyFile, "two")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	srv.stderr.await(t, regexp.MustCompile(`reloaded TLS certificate`))
	if got := servedCert(t, url, one, two); got != "two" {
		t.Errorf("after SIGHUP served %q, want two", got)
	}

	// A broken file is logged and the previous certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	srv.stderr.await(t, regexp.MustCompile(`TLS certificate reload failed: serving the previous one`))
	if got := servedCert(t, url, one, two); got != "two" {
		t.Errorf("after a failed reload served %q, want two", got)
	}
}

func TestServe_TLSMissingFileFailsAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := writeFile(t, "tls.yaml", "server:\n  tls_cert_file: "+dir+"/none.pem\n  tls_key_file: "+dir+"/none.key\n")
	_, _, err := run(t, "--db", newDB(t), "--config", config, "serve", "--listen", "127.0.0.1:0")
	wantErr(t, err, "server.tls_cert_file", "none.pem")
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestConfig_TLSAndAuthFailureKeys(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, yaml, wantErr string }{
		{"cert only", "server:\n  tls_cert_file: /x.pem\n", "set both or neither"},
		{"key only", "server:\n  tls_key_file: /x.key\n", "set both or neither"},
		{"negative auth failures", "server:\n  auth_failures_per_minute: -1\n", "server.auth_failures_per_minute must be 0"},
		{"both and a limit", "server:\n  tls_cert_file: /x.pem\n  tls_key_file: /x.key\n  auth_failures_per_minute: 5\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readConfig(writeFile(t, "c.yaml", tt.yaml))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
