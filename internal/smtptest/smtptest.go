// Package smtptest is an SMTP server for tests (RFC 5321 subset: EHLO,
// HELO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), with a
// self-signed certificate generated at start, so that mail code is tested
// against a real SMTP dialogue over real TCP and TLS, and tests read the
// real messages.
package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one received message.
type Message struct {
	From string   // envelope sender
	To   []string // envelope recipients
	Data string   // the message as received (headers and body)
	// TLS reports whether the message came over TLS; Auth is the user
	// name that authenticated ("" without AUTH).
	TLS  bool
	Auth string
}

// Header returns a decoded header of the message.
func (m Message) Header(name string) string {
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		return ""
	}
	v := msg.Header.Get(name)
	if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return dec
	}
	return v
}

// Body returns the decoded text of the message (quoted-printable
// undone).
func (m Message) Body() string {
	msg, err := mail.ReadMessage(strings.NewReader(m.Data))
	if err != nil {
		return ""
	}
	var r io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, _ := io.ReadAll(r)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// Options configure a Server.
type Options struct {
	// StartTLS offers STARTTLS with the server's certificate.
	StartTLS bool
	// Username and Password, when set, are required (AUTH PLAIN, offered
	// only after TLS when StartTLS is on).
	Username, Password string
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // host:port
	Host string
	Port int
	// CertPEM is the self-signed certificate (for 127.0.0.1 and
	// localhost); RootCAs trusts it.
	CertPEM []byte
	RootCAs *x509.CertPool

	opts     Options
	tls      *tls.Config
	ln       net.Listener
	messages chan Message
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cert, certPEM, err := selfSigned()
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	s := &Server{Addr: ln.Addr().String(), Host: host, Port: p, CertPEM: certPEM, RootCAs: pool,
		opts: opts, tls: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ln: ln, messages: make(chan Message, 100), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Wait returns the next message, failing the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration) Message {
	t.Helper()
	select {
	case m := <-s.messages:
		return m
	case <-time.After(timeout):
		t.Fatalf("smtptest: no mail within %v", timeout)
		return Message{}
	}
}

// None fails the test if a message arrives within d.
func (s *Server) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-s.messages:
		t.Fatalf("smtptest: unexpected mail to %v: %s", m.To, m.Header("Subject"))
	case <-time.After(d):
	}
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) session(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		w.Flush()
	}
	reply("220 localhost smtptest ESMTP")
	var (
		isTLS bool
		auth  string
		msg   Message
		hello bool
	)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			hello = true
			msg = Message{}
			lines := []string{"250-localhost"}
			if s.opts.StartTLS && !isTLS {
				lines = append(lines, "250-STARTTLS")
			}
			if s.opts.Username != "" && (isTLS || !s.opts.StartTLS) {
				lines = append(lines, "250-AUTH PLAIN")
			}
			lines = append(lines, "250 8BITMIME")
			reply(lines...)
		case "STARTTLS":
			if !s.opts.StartTLS || isTLS {
				reply("502 5.5.1 not available")
				continue
			}
			reply("220 2.0.0 ready to start TLS")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, isTLS, hello = tc, true, false
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") || s.opts.Username == "" {
				reply("504 5.5.4 unsupported")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.opts.Username || parts[2] != s.opts.Password {
				reply("535 5.7.8 authentication failed")
				continue
			}
			auth = parts[1]
			reply("235 2.7.0 authenticated")
		case "MAIL":
			switch {
			case !hello:
				reply("503 5.5.1 EHLO first")
			case s.opts.StartTLS && !isTLS:
				reply("530 5.7.0 STARTTLS first")
			case s.opts.Username != "" && auth == "":
				reply("530 5.7.0 authentication required")
			default:
				msg = Message{From: addr(arg), TLS: isTLS, Auth: auth}
				reply("250 2.1.0 ok")
			}
		case "RCPT":
			if msg.From == "" {
				reply("503 5.5.1 MAIL first")
				continue
			}
			msg.To = append(msg.To, addr(arg))
			reply("250 2.1.5 ok")
		case "DATA":
			if len(msg.To) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".")) // dot-unstuffing
			}
			msg.Data = b.String()
			s.messages <- msg
			msg = Message{}
			reply("250 2.0.0 queued")
		case "RSET":
			msg = Message{}
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("500 5.5.2 unknown command")
		}
	}
}

// addr extracts the address of "FROM:<a@b>" or "TO:<a@b> ...".
func addr(arg string) string {
	i, j := strings.Index(arg, "<"), strings.Index(arg, ">")
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
