// Command bareproxy is the load run's baseline (cli/load_test.go): the least
// a proxy in front of Anthropic must do, in httputil.ReverseProxy. It reads
// the whole request body, swaps the client's key for the account's
// x-api-key and flushes every write. It is built and run by `make load`
// only, as its own process, so its CPU time and memory are measured apart
// from llmgw's and from the test's.
package main

import (
	"bytes"
	"crypto/subtle"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`ADDR` to listen on")
	upstream := flag.String("upstream", "", "upstream base `URL`")
	clientKey := flag.String("client-key", "", "the `KEY` clients send as x-api-key")
	accountKey := flag.String("account-key", "", "the upstream x-api-key `KEY`")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("bareproxy: upstream %q: %v", *upstream, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Authorization")
			r.Out.Header.Set("X-Api-Key", *accountKey)
		},
		// As llmgw's transport: keep a connection per concurrent client.
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		FlushInterval: -1,
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Api-Key")), []byte(*clientKey)) != 1 {
			http.Error(w, "unknown key", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
		if err != nil {
			http.Error(w, "could not read the body", http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("bareproxy: %v", err)
	}
	fmt.Printf("listening %s\n", ln.Addr()) // the load run waits for this line
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.Serve(ln))
}
