package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/postgres/pgtest"
)

// proxy forwards TCP connections to target until it is cut; while cut it
// refuses connections and has closed the open ones, as a stopped database
// would.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("re-listening on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestDatabaseOutage stops the database under a running server (by cutting
// a proxy in front of it): requests get 503 problems and /readyz fails;
// when the database is back the same server recovers without a restart.
func TestDatabaseOutage(t *testing.T) {
	db, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, db.Host)
	viaProxy := *db
	viaProxy.Host = px.addr
	q := viaProxy.Query()
	q.Set("connect_timeout", "2")
	viaProxy.RawQuery = q.Encode()
	base, _ := startServer(t, map[string]string{"DATABASE_URL": viaProxy.String(), "ASSAY_REQUEST_TIMEOUT": "10s"})

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	post := func() (int, string) {
		resp, err := http.Post(base+"/v1/evaluations", "application/json", strings.NewReader(gradeBody))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	if code, _ := post(); code != http.StatusCreated {
		t.Fatalf("before the outage: POST = %d, want 201", code)
	}

	px.cut()
	for _, tc := range []struct {
		name string
		do   func() (int, string)
	}{
		{"readyz", func() (int, string) { return get("/readyz") }},
		{"list", func() (int, string) { return get("/v1/evaluations") }},
		{"grade", post},
	} {
		code, ct := tc.do()
		if code != http.StatusServiceUnavailable || ct != "application/problem+json" {
			t.Errorf("during the outage: %s = %d %s, want 503 application/problem+json", tc.name, code, ct)
		}
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("during the outage: healthz = %d, want 200 (the process is alive)", code)
	}

	px.restore(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := get("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d 20s after the database came back", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := post(); code != http.StatusCreated {
		t.Errorf("after the outage: POST = %d, want 201", code)
	}
}
