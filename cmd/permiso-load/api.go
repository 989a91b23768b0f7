package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
	// maxBody bounds what is kept of a response body during setup.
	maxBody = 1 << 20
)

// newHTTPClient returns the one client of a run: keep-alive connections,
// enough idle connections per host for every worker, no proxy (the target
// is loopback), no compression, no redirects.
func newHTTPClient(concurrency int) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no overall limit
		MaxIdleConnsPerHost:   2 * concurrency,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   2 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// apiClient talks to one permiso server.
type apiClient struct {
	hc     *http.Client
	base   string // scheme://host:port[/path]
	prefix string // "/api/v1"
}

// url returns the address of an API path (below the prefix).
func (a *apiClient) url(path string) string { return a.base + a.prefix + path }

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) String() string {
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}

// send sends one request and returns the response, whose body the caller
// reads and closes. auth is the value of the Authorization header ("" for
// none).
func (a *apiClient) send(ctx context.Context, method, rawURL string, body []byte, contentType, auth string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return a.hc.Do(req)
}

// do sends one request and reads the whole response. auth is the value of
// the Authorization header ("" for none).
func (a *apiClient) do(ctx context.Context, method, rawURL string, body []byte, contentType, auth string) (*response, error) {
	resp, err := a.send(ctx, method, rawURL, body, contentType, auth)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, rawURL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// hit sends one request of a measured loop and discards the body, read to
// the end so that the connection goes back to the pool.
func (a *apiClient) hit(ctx context.Context, method, rawURL string, body []byte, contentType, auth string) (int, error) {
	resp, err := a.send(ctx, method, rawURL, body, contentType, auth)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// postJSON sends v as JSON with a bearer token.
func (a *apiClient) postJSON(ctx context.Context, path string, v any, bearer string) (*response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return a.do(ctx, http.MethodPost, a.url(path), b, jsonType, "Bearer "+bearer)
}

// tokens is a successful token response (RFC 6749 §5.1).
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// tokenRequest posts form to the token endpoint once, with an optional
// Authorization, and decodes a 200 answer. The response is returned with
// any HTTP error, so that callers can tell a busy server (503) apart.
func (a *apiClient) tokenRequest(ctx context.Context, form url.Values, auth string) (tokens, *response, error) {
	r, err := a.do(ctx, http.MethodPost, a.url("/auth/token"), []byte(form.Encode()), formType, auth)
	if err != nil {
		return tokens{}, nil, err
	}
	if r.status != http.StatusOK {
		return tokens{}, r, fmt.Errorf("%s grant: %s", form.Get("grant_type"), r)
	}
	var t tokens
	if err := json.Unmarshal(r.body, &t); err != nil || t.AccessToken == "" {
		return tokens{}, r, fmt.Errorf("%s grant: no access_token in %s", form.Get("grant_type"), r)
	}
	return t, r, nil
}

// login sends the password grant, up to attempts times while the server
// answers 503 (its password hashing is saturated), after the Retry-After.
// Every attempt counts towards the account's lockout before the password
// is checked, 503s included (oauth2.verifyPassword): afterBusy, when not
// nil, runs after each 503 to lift that count again.
func (a *apiClient) login(ctx context.Context, username, password string, attempts int, afterBusy func(context.Context) error) (tokens, error) {
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	for i := 1; ; i++ {
		t, r, err := a.tokenRequest(ctx, form, "")
		if err == nil && t.RefreshToken == "" {
			err = fmt.Errorf("login of %q: no refresh_token", username)
		}
		if err == nil || r == nil || r.status != http.StatusServiceUnavailable || i >= attempts {
			return t, err
		}
		if afterBusy != nil {
			if err := afterBusy(ctx); err != nil {
				return tokens{}, err
			}
		}
		if err := sleepCtx(ctx, retryAfter(r.header)); err != nil {
			return tokens{}, err
		}
	}
}

// refresh rotates a refresh token (retrying 503s for up to a minute).
func (a *apiClient) refresh(ctx context.Context, refreshToken string) (tokens, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	deadline := time.Now().Add(time.Minute)
	for {
		t, r, err := a.tokenRequest(ctx, form, "")
		if err == nil && t.RefreshToken == "" {
			err = fmt.Errorf("refresh: no refresh_token")
		}
		if err == nil || r == nil || r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return t, err
		}
		if err := sleepCtx(ctx, retryAfter(r.header)); err != nil {
			return tokens{}, err
		}
	}
}

// basicAuth is the Authorization value of client credentials: both parts
// form-urlencoded before Base64 (RFC 6749 §2.3.1).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// retryAfter reads a Retry-After in seconds, between 50 ms and 2 s.
func retryAfter(h http.Header) time.Duration {
	d := 200 * time.Millisecond
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil {
		d = time.Duration(s) * time.Second
	}
	return min(max(d, 50*time.Millisecond), 2*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
