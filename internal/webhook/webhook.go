// Package webhook checks and delivers callbacks: the final state of an
// asynchronous evaluation POSTed to the URL its request named, signed with
// HMAC-SHA256 so the receiver can tell it came from this server. Targets
// are checked twice against the allow-list and the private address ranges
// — when the request is made, and again when connecting, so that a name
// that resolves to a public address at first and an internal one later
// (DNS rebinding) still cannot make the server reach internal addresses.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">". Signing the time too lets a receiver refuse replays.
const SignatureHeader = "Assay-Signature"

// MaxURLLength is the longest callback URL accepted.
const MaxURLLength = 2048

// Resolver looks up a host's addresses; net.DefaultResolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Config configures a Client.
type Config struct {
	// Secret signs every delivery; required.
	Secret string
	// Allow lists host patterns: "hooks.example.com", "*.example.com"
	// (any subdomain), an IP address or a CIDR range. When it is not
	// empty only matching hosts may be called back. A matching host may
	// also resolve to a private address; any other host may not.
	Allow []string
	// Timeout bounds one delivery; default 10s.
	Timeout time.Duration
	// Resolver defaults to net.DefaultResolver; tests replace it.
	Resolver Resolver
	// Now defaults to time.Now.
	Now func() time.Time
}

// Client checks and sends callbacks. It implements evaluation.Callbacks.
type Client struct {
	cfg  Config
	http *http.Client
}

var _ evaluation.Callbacks = (*Client)(nil)

// New returns a client; it refuses an empty secret, since an unsigned
// callback cannot be trusted by its receiver.
func New(cfg Config) (*Client, error) {
	if cfg.Secret == "" {
		return nil, errors.New("webhooks need a signing secret (ASSAY_WEBHOOK_SECRET)")
	}
	for _, p := range cfg.Allow {
		if _, err := parsePattern(p); err != nil {
			return nil, fmt.Errorf("ASSAY_WEBHOOK_ALLOW: %w", err)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg}
	c.http = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			// No proxy from the environment: it would connect for us, out
			// of reach of the address check.
			Proxy:               nil,
			DialContext:         c.dial,
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConnsPerHost: 2,
		},
		// A redirect could lead anywhere; it counts as a failed delivery.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Check implements evaluation.Callbacks: scheme, shape, allow-list and
// resolved addresses, with pointer /callback_url.
func (c *Client) Check(ctx context.Context, raw string) error {
	bad := func(detail string) error { return fault.Field("/callback_url", detail) }
	if len(raw) > MaxURLLength {
		return bad(fmt.Sprintf("must be at most %d characters", MaxURLLength))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return bad("must be an absolute http or https URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must use http or https")
	case u.User != nil:
		return bad("must not contain credentials")
	}
	host := u.Hostname()
	if c.allowed(host) {
		return nil
	}
	if len(c.cfg.Allow) > 0 {
		return bad(fmt.Sprintf("host %q is not in the callback allow-list (ASSAY_WEBHOOK_ALLOW)", host))
	}
	ips, err := c.resolve(ctx, host)
	if err != nil {
		return bad(fmt.Sprintf("host %q does not resolve", host))
	}
	for _, ip := range ips {
		if Internal(ip) {
			return bad(fmt.Sprintf("host %q resolves to a private, loopback or link-local address; callbacks may only reach public addresses unless allow-listed", host))
		}
	}
	return nil
}

// Send implements evaluation.Callbacks: one signed POST; any answer but
// 2xx is an error, to be retried.
func (c *Client) Send(ctx context.Context, target string, body []byte) error {
	t := c.cfg.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Assay-Webhook/1")
	req.Header.Set(SignatureHeader, "t="+strconv.FormatInt(t, 10)+",v1="+Sign(c.cfg.Secret, t, body))
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	return nil
}

// dial connects only to allowed hosts or public addresses, checking the
// addresses it actually connects to.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	if c.allowed(host) {
		return d.DialContext(ctx, network, addr)
	}
	ips, err := c.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var last error = fmt.Errorf("callback host %q has no public address", host)
	for _, ip := range ips {
		if Internal(ip) {
			continue
		}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, last
}

func (c *Client) resolve(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	addrs, err := c.cfg.Resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no address for %q", host)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

func (c *Client) allowed(host string) bool {
	for _, p := range c.cfg.Allow {
		if m, _ := parsePattern(p); m != nil && m(strings.ToLower(host)) {
			return true
		}
	}
	return false
}

// Sign returns the hex HMAC-SHA256 of "<t>.<body>" under secret.
func Sign(secret string, t int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t, 10) + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a SignatureHeader value against body, refusing signatures
// older (or newer) than tolerance, as a receiver should.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var t int64
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t, _ = strconv.ParseInt(v, 10, 64)
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if t == 0 || len(sigs) == 0 {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp outside the tolerance")
	}
	want := Sign(secret, t, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature mismatch")
}
