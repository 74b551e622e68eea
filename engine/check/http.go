package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// maxRegexBody bounds the body kept for a url's regex.
const maxRegexBody = 1 << 20

// maxHeader bounds the response header a probe reads; keepalived's own
// buffer is smaller, so a real server that passes there passes here.
const maxHeader = 64 << 10

// Sentinel errors of HTTP probes.
var (
	ErrNoResponse = errors.New("no http response header received")
	ErrStatusLine = errors.New("malformed http status line")
	ErrStatus     = errors.New("http status code not expected")
	ErrDigest     = errors.New("md5 digest of body differs")
	ErrRegex      = errors.New("body does not satisfy regex")
)

// ProbeHTTP is HTTP_GET and SSL_GET: each url is fetched in order, on its
// own connection, and must answer with a status in its status_code ranges
// (default 200-299) and, when a digest is set, a body whose MD5 matches.
// The request is keepalived's byte for byte (check_http.c request_template):
//
//	GET <path> HTTP/1.<0|1>\r\n
//	User-Agent: KeepAliveClient\r\n
//	[Connection: close\r\n]            (http_protocol 1.0C and 1.1)
//	Host: <virtualhost | addr:port | [addr6]:port>\r\n\r\n
//
// keepalived retries only the failed url on the next attempt; keepwatch's
// scheduler retries the whole probe, which gives the same up/down verdicts.
func ProbeHTTP(ctx context.Context, t *Target) Result {
	if t.HTTP == nil || len(t.HTTP.URLs) == 0 {
		return fail(ReasonConfig, errors.New("HTTP/SSL_GET checker has no urls"))
	}
	for i := range t.HTTP.URLs {
		u := &t.HTTP.URLs[i]
		want, err := t.digest(i)
		if err != nil {
			return fail(ReasonConfig, err)
		}
		re, err := urlRegexp(u)
		if err != nil {
			return fail(ReasonConfig, err)
		}
		status, sum, text, err := fetch(ctx, t, u, want != nil, re != nil)
		if err != nil {
			return failErr(ctx, err, ReasonIO)
		}
		if !statusOK(u.StatusCodes, status) {
			return fail(ReasonStatus, fmt.Errorf("url %q: %w: %d", u.Path, ErrStatus, status))
		}
		if want != nil && !bytes.Equal(sum, want) {
			return fail(ReasonDigest, fmt.Errorf("url %q: %w: got %x", u.Path, ErrDigest, sum))
		}
		if re != nil && regexMatch(re, u, text) == u.RegexNoMatch {
			return fail(ReasonRegex, fmt.Errorf("url %q: %w %q", u.Path, ErrRegex, u.Regex))
		}
	}
	return ok
}

// digest returns url i's expected MD5, nil if it has none: precompiled by
// Compile, else decoded now, so a Target filled by hand is never checked
// more leniently than configured.
func (t *Target) digest(i int) ([]byte, error) {
	if i < len(t.digests) {
		return t.digests[i], nil
	}
	return parseDigest(&t.HTTP.URLs[i])
}

// parseDigest decodes u's digest (nil if none).
func parseDigest(u *config.URL) ([]byte, error) {
	if u.Digest == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(u.Digest))
	if err != nil || len(b) != md5.Size {
		return nil, fmt.Errorf("url %q: digest %q is not 32 hex digits", u.Path, u.Digest)
	}
	return b, nil
}

// Genhash fetches one url of t as HTTP_GET/SSL_GET does and returns the
// status code and the body's MD5 in lower-case hex, the value to put in a
// url's digest: what keepalived's genhash (keepalived -T) prints.
func Genhash(ctx context.Context, t *Target, u *config.URL) (status int, digest string, err error) {
	status, sum, _, err := fetch(ctx, t, u, true, false)
	if err != nil {
		return 0, "", err
	}
	return status, hex.EncodeToString(sum), nil
}

// statusOK reports whether code is in ranges (200-299 when empty).
func statusOK(ranges []config.StatusRange, code int) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if code >= r.From && code <= r.To {
			return true
		}
	}
	return false
}

// Request returns the request keepalived sends for url u of t.
func Request(t *Target, u *config.URL) []byte {
	minor, conn := 0, ""
	if t.HTTP != nil {
		switch t.HTTP.Protocol {
		case "1.1":
			minor, conn = 1, "Connection: close\r\n"
		case "1.0C", "1.0c":
			conn = "Connection: close\r\n"
		}
	}
	host := vhost(t, u)
	if host == "" {
		// Without a virtualhost the Host is the address with the port, an
		// IPv6 literal in brackets (RFC 2732; check_http.c request_template_ipv6).
		host = t.Addr.String()
	}
	b := make([]byte, 0, 96+len(u.Path)+len(host))
	b = append(b, "GET "...)
	b = append(b, u.Path...)
	b = append(b, " HTTP/1."...)
	b = strconv.AppendInt(b, int64(minor), 10)
	b = append(b, "\r\nUser-Agent: KeepAliveClient\r\n"...)
	b = append(b, conn...)
	b = append(b, "Host: "...)
	b = append(b, host...)
	return append(b, "\r\n\r\n"...)
}

// vhost is the Host name for u: the url's virtualhost, else the checker's,
// else the real or virtual server's (check_http.c http_request_thread).
func vhost(t *Target, u *config.URL) string {
	if u.Virtualhost != "" {
		return u.Virtualhost
	}
	if t.HTTP != nil && t.HTTP.Virtualhost != "" {
		return t.HTTP.Virtualhost
	}
	return t.Virtualhost
}

// tlsConfig is the client configuration of SSL_GET. keepalived does not
// verify the real server's certificate (a health check is not a trust
// decision; its ssl block's ca is not enforced either), presents the ssl
// block's certificate when there is one, and sends SNI only with enable_sni: sni_name, else the
// virtualhost.
func tlsConfig(t *Target, u *config.URL) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // keepalived semantics, see above
	if t.ClientCert != nil {
		c.Certificates = []tls.Certificate{*t.ClientCert}
	}
	if t.HTTP.EnableSNI {
		c.ServerName = t.HTTP.SNIName
		if c.ServerName == "" {
			c.ServerName = vhost(t, u)
		}
	}
	return c
}

// fetch sends u's request and reads the response: the status code and, if
// wantSum, the MD5 of the body as keepalived computes it: the raw bytes
// after the header's blank line, up to Content-Length when the server sent
// one, with no transfer decoding (check_http.c http_process_response).
func fetch(ctx context.Context, t *Target, u *config.URL, wantSum, wantBody bool) (int, []byte, []byte, error) {
	dl := deadline(ctx, t)
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	raw, err := dial(dctx, "tcp", t)
	if err != nil {
		return 0, nil, nil, err
	}
	defer raw.Close()
	// Cancellation unblocks whatever is reading or writing: the raw
	// connection's deadline also bounds a TLS connection over it.
	stop := context.AfterFunc(dctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	raw.SetDeadline(dl)
	c := raw
	if t.Type == config.SSLGet {
		tc := tls.Client(raw, tlsConfig(t, u))
		if err := tc.HandshakeContext(dctx); err != nil {
			if classify(dctx, err, "") == "" {
				return 0, nil, nil, &tlsError{err}
			}
			return 0, nil, nil, err
		}
		c = tc
	}
	if _, err := c.Write(Request(t, u)); err != nil {
		return 0, nil, nil, err
	}
	return readResponse(c, wantSum, wantBody)
}

// tlsError marks a handshake failure so it classifies as ReasonTLS.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// readResponse reads an HTTP response from r until EOF or the end of a
// Content-Length body and returns its status code, body MD5 (nil unless
// wantSum) and, if wantBody, the first maxRegexBody bytes of the body.
func readResponse(r io.Reader, wantSum, wantBody bool) (int, []byte, []byte, error) {
	br := bufio.NewReaderSize(r, 4096)
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if len(hdr) > maxHeader {
			return 0, nil, nil, fmt.Errorf("%w: header over %d bytes", ErrNoResponse, maxHeader)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, nil, nil, ErrNoResponse
			}
			return 0, nil, nil, err
		}
		if bytes.HasSuffix(hdr, []byte("\n\r\n")) || bytes.HasSuffix(hdr, []byte("\n\n")) {
			break
		}
	}
	status, clen, err := parseHeader(hdr)
	if err != nil {
		return 0, nil, nil, err
	}
	var h hash.Hash
	var keep *capped
	var ws []io.Writer
	if wantSum {
		h = md5.New()
		ws = append(ws, h)
	}
	if wantBody {
		keep = &capped{max: maxRegexBody}
		ws = append(ws, keep)
	}
	body := io.Reader(br)
	if clen >= 0 {
		body = io.LimitReader(br, clen)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), body); err != nil {
		return 0, nil, nil, err
	}
	var sum, text []byte
	if h != nil {
		sum = h.Sum(nil)
	}
	if keep != nil {
		text = keep.b
	}
	return status, sum, text, nil
}

// capped keeps the first max bytes written to it and discards the rest.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// parseHeader returns the status code of a response header and its
// Content-Length (-1 if absent or unparsable, as keepalived then reads to EOF).
func parseHeader(hdr []byte) (status int, clen int64, err error) {
	line, rest, _ := bytes.Cut(hdr, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	// "HTTP/1.1 200 OK": keepalived reads the number after the first space.
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return 0, 0, fmt.Errorf("%w: %q", ErrStatusLine, truncate(line))
	}
	_, after, found := bytes.Cut(line, []byte(" "))
	if !found || len(after) < 3 {
		return 0, 0, fmt.Errorf("%w: %q", ErrStatusLine, truncate(line))
	}
	code, err := strconv.Atoi(string(after[:3]))
	if err != nil || code < 100 || code > 999 {
		return 0, 0, fmt.Errorf("%w: %q", ErrStatusLine, truncate(line))
	}
	clen = -1
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		name, val, ok := bytes.Cut(l, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			continue
		}
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(val)), 10, 64); err == nil && n >= 0 {
			clen = n
		}
	}
	return code, clen, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// regexFlags are keepalived's regex_options (PCRE2 names) that RE2 has.
var regexFlags = map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}

// regexCache holds compiled url regexes by their source and options.
var regexCache sync.Map // string -> *regexp.Regexp

// urlRegexp compiles u's regex (nil if none). keepalived uses PCRE2;
// keepwatch uses Go's RE2 syntax, which covers the patterns health pages
// use but not backreferences or lookaround; such a regex is a config
// error. Options without an RE2 flag are ignored.
func urlRegexp(u *config.URL) (*regexp.Regexp, error) {
	if u.Regex == "" {
		return nil, nil
	}
	flags := ""
	for _, o := range u.RegexOptions {
		flags += regexFlags[o]
	}
	src := u.Regex
	if flags != "" {
		src = "(?" + flags + ")" + src
	}
	if re, ok := regexCache.Load(src); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("url %q: regex: %w", u.Path, err)
	}
	regexCache.Store(src, re)
	return re, nil
}

// regexMatch reports whether re matches body starting at an offset within
// [regex_min_offset, regex_max_offset] (keepalived check_http.c check_regex).
func regexMatch(re *regexp.Regexp, u *config.URL, body []byte) bool {
	from := min(max(u.RegexMinOffset, 0), len(body))
	loc := re.FindIndex(body[from:])
	if loc == nil {
		return false
	}
	return u.RegexMaxOffset <= 0 || from+loc[0] <= u.RegexMaxOffset
}
