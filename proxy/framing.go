package proxy

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
)

// A request that carries both Content-Length and Transfer-Encoding is the
// classic request-smuggling shape: a front end and llmgw could disagree on
// where its body ends. Go's server accepts it (chunked wins) and deletes
// Content-Length before a handler runs, so llmgw cannot see it there.
// GuardFraming wraps the listener so that each connection reads its own
// request heads on the way in, and ConnContext lets the handler ask whether
// the request it serves had such a head; serveRequest refuses it.

// maxHeadBytes bounds the bytes a connection buffers to find the end of a
// request head. Go refuses larger heads itself (server.max_header_bytes);
// past this the guard stops looking and leaves the connection to Go.
const maxHeadBytes = 1 << 20

// GuardFraming returns a listener whose connections note request heads with
// ambiguous framing. Serve with ConnContext set for the notes to be read.
func GuardFraming(ln net.Listener) net.Listener { return &framingListener{ln} }

type framingListener struct{ net.Listener }

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

type connKey struct{}

// ConnContext is an http.Server ConnContext hook that makes a guarded
// connection known to the handlers of its requests.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// ambiguousFraming reports whether the request being served on ctx's
// connection had both Content-Length and Transfer-Encoding. Requests on a
// connection are served one at a time, in order, so the n-th call on a
// connection is about its n-th request head.
func ambiguousFraming(ctx context.Context) bool {
	fc, _ := ctx.Value(connKey{}).(*framingConn)
	if fc == nil {
		return false
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.served++
	return fc.ambiguous[fc.served]
}

// framingConn follows HTTP/1.1 framing on the bytes Go's server reads: a
// head, then a body of Content-Length bytes or of chunks, then the next
// head. Where it loses track (bytes that are not HTTP), it stops looking;
// Go refuses such input itself.
type framingConn struct {
	net.Conn

	mu        sync.Mutex
	heads     int          // request heads seen
	ambiguous map[int]bool // by head number, from 1
	served    int          // requests handed to handlers
	lost      bool

	state  framingState
	head   []byte // the head being collected
	remain int64  // body bytes left in a Content-Length body or a chunk
	line   []byte // a chunk-size or trailer line being collected
}

type framingState int

const (
	inHead framingState = iota
	inBody
	inChunkSize
	inChunkData
	inChunkEnd // the CRLF after a chunk's data
	inTrailer
)

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if !c.lost {
			c.follow(p[:n])
		}
		c.mu.Unlock()
	}
	return n, err
}

// follow advances the framing state over b.
func (c *framingConn) follow(b []byte) {
	for len(b) > 0 && !c.lost {
		switch c.state {
		case inHead:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.collectHead(b)
				return
			}
			c.collectHead(b[:i+1])
			b = b[i+1:]
			if bytes.HasSuffix(c.head, []byte("\r\n\r\n")) || bytes.HasSuffix(c.head, []byte("\n\n")) {
				c.endHead()
			} else if bytes.Equal(c.head, []byte("\r\n")) || bytes.Equal(c.head, []byte("\n")) {
				c.head = c.head[:0] // blank lines before a request line are allowed
			}
		case inBody, inChunkData:
			k := int64(len(b))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			b = b[k:]
			if c.remain == 0 {
				if c.state == inBody {
					c.state = inHead
				} else {
					c.state = inChunkEnd
				}
			}
		case inChunkEnd, inChunkSize, inTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.collectLine(b)
				return
			}
			c.collectLine(b[:i+1])
			b = b[i+1:]
			c.endLine()
		}
	}
}

func (c *framingConn) collectHead(b []byte) {
	if len(c.head)+len(b) > maxHeadBytes {
		c.lost = true
		return
	}
	c.head = append(c.head, b...)
}

func (c *framingConn) collectLine(b []byte) {
	if len(c.line)+len(b) > 4096 {
		c.lost = true
		return
	}
	c.line = append(c.line, b...)
}

// endHead reads the framing headers of a complete head.
func (c *framingConn) endHead() {
	c.heads++
	var length int64 = -1
	chunked, hasLength, hasTE := false, false, false
	for _, line := range bytes.Split(c.head, []byte("\n"))[1:] {
		name, value, ok := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")):
			hasLength = true
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
				length = n
			}
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")):
			hasTE = true
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	c.head = c.head[:0]
	switch {
	case hasLength && hasTE:
		if c.ambiguous == nil {
			c.ambiguous = make(map[int]bool)
		}
		c.ambiguous[c.heads] = true
		c.lost = true // it is refused and its connection closed: no need to follow it
	case chunked:
		c.state = inChunkSize
	case hasTE:
		c.lost = true // Go refuses other transfer codings
	case length > 0:
		c.state, c.remain = inBody, length
	}
}

// endLine handles a complete chunk-size, chunk-end or trailer line.
func (c *framingConn) endLine() {
	line := bytes.TrimRight(c.line, "\r\n")
	c.line = c.line[:0]
	switch c.state {
	case inChunkEnd:
		if len(line) != 0 {
			c.lost = true
			return
		}
		c.state = inChunkSize
	case inChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			c.lost = true
		case n == 0:
			c.state = inTrailer
		default:
			c.state, c.remain = inChunkData, n
		}
	case inTrailer:
		if len(line) == 0 {
			c.state = inHead
		}
	}
}
