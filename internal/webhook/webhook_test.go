package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/fault"
)

// fakeDNS answers from a table, so no test depends on real DNS.
type fakeDNS map[string][]string

func (f fakeDNS) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []net.IPAddr
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

var dns = fakeDNS{
	"hooks.example.com":   {"93.184.216.34"},
	"internal.example":    {"10.1.2.3"},
	"mixed.example.com":   {"93.184.216.34", "192.168.1.9"},
	"metadata.example":    {"169.254.169.254"},
	"api.partner.example": {"10.9.9.9"},
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		allow []string
		url   string
		ok    bool
	}{
		{"public host", nil, "https://hooks.example.com/assay", true},
		{"public IP", nil, "http://93.184.216.34:8080/x", true},
		{"private host", nil, "https://internal.example/hook", false},
		{"one private address of several", nil, "https://mixed.example.com/", false},
		{"cloud metadata", nil, "http://metadata.example/latest", false},
		{"loopback", nil, "http://127.0.0.1:9000/", false},
		{"localhost literal v6", nil, "http://[::1]:9000/", false},
		{"IPv4-mapped loopback", nil, "http://[::ffff:127.0.0.1]/", false},
		{"carrier NAT", nil, "http://100.64.1.1/", false},
		{"unresolvable", nil, "https://nowhere.example/", false},
		{"not http", nil, "ftp://hooks.example.com/", false},
		{"relative", nil, "/hook", false},
		{"credentials", nil, "https://u:p@hooks.example.com/", false},
		{"too long", nil, "https://hooks.example.com/" + strings.Repeat("a", MaxURLLength), false},
		{"allow-listed private host", []string{"api.partner.example"}, "https://api.partner.example/hook", true},
		{"wildcard allows a subdomain", []string{"*.partner.example"}, "https://api.partner.example/hook", true},
		{"wildcard does not allow the domain", []string{"*.partner.example"}, "https://partner.example/", false},
		{"allow-list excludes others", []string{"api.partner.example"}, "https://hooks.example.com/", false},
		{"allow-listed loopback", []string{"127.0.0.1"}, "http://127.0.0.1:9000/", true},
		{"allow-listed range", []string{"10.0.0.0/8"}, "http://10.4.4.4/", true},
		{"allow-listed IPv6", []string{"::1"}, "http://[::1]:9000/", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Secret: "s", Allow: tc.allow, Resolver: dns})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(t.Context(), tc.url)
			if tc.ok && err != nil {
				t.Fatalf("Check(%q) = %v, want nil", tc.url, err)
			}
			if !tc.ok {
				fe, ok := fault.As(err)
				if !ok || fe.Kind != fault.Invalid || len(fe.Fields) != 1 || fe.Fields[0].Pointer != "/callback_url" {
					t.Fatalf("Check(%q) = %v, want an invalid /callback_url", tc.url, err)
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Secret: "s", Allow: []string{"host:80"}},
		{Secret: "s", Allow: []string{"a.*.example"}},
		{Secret: "s", Allow: []string{"10.0.0.0/99"}},
		{Secret: "s", Allow: []string{" "}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

func TestSignAndVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"event":"evaluation.completed"}`)
	header := "t=1700000000,v1=" + Sign("secret", now.Unix(), body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"valid", "secret", header, body, now, true},
		{"another v1 beside it", "secret", "t=1700000000,v1=00ff," + header[len("t=1700000000,"):], body, now, true},
		{"wrong secret", "other", header, body, now, false},
		{"changed body", "secret", header, []byte(`{"event":"evaluation.failed"}`), now, false},
		{"too old", "secret", header, body, now.Add(10 * time.Minute), false},
		{"malformed", "secret", "v1=abc", body, now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
			if (err == nil) != tc.ok {
				t.Errorf("Verify = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestSend(t *testing.T) {
	var calls atomic.Int32
	var got struct {
		sig, ct string
		body    []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		got.sig, got.ct = r.Header.Get(SignatureHeader), r.Header.Get("Content-Type")
		got.body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	now := time.Unix(1_700_000_000, 0)
	c, err := New(Config{Secret: "k", Allow: []string{"127.0.0.1"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"x"}`)
	if err := c.Send(t.Context(), srv.URL+"/hook", body); err == nil {
		t.Fatal("a 502 answer counted as delivered")
	}
	if err := c.Send(t.Context(), srv.URL+"/hook", body); err != nil {
		t.Fatal(err)
	}
	if err := Verify("k", got.sig, got.body, now, time.Minute); err != nil || got.ct != "application/json" {
		t.Errorf("delivery: signature %q (%v), content type %q", got.sig, err, got.ct)
	}

	// Without the allow-list entry the dialer refuses the loopback
	// address, even though Check was never asked.
	closed, err := New(Config{Secret: "k"})
	if err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	if err := closed.Send(t.Context(), srv.URL+"/hook", body); err == nil || calls.Load() != before {
		t.Errorf("Send to loopback without allow-list = %v after %d calls, want refused before connecting", err, calls.Load()-before)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	c, err := New(Config{Secret: "k", Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), redirect.URL, []byte(`{}`)); err == nil || hits.Load() != 0 {
		t.Errorf("Send through a redirect = %v, %d hits on its target; want an error and none", err, hits.Load())
	}
}
