package httpguard

import (
	"net/http"
	"strconv"
	"time"
)

// The agent's HTTP server limits. Every client is bounded in time, so a
// slow or idle one cannot hold a connection, a goroutine and its buffers
// for ever (issue 10 §3); the values leave room for the largest legitimate
// request, a Prometheus scrape of an agent with 10,000 real servers: about
// 13 MB of text (1-2 MB gzipped), built in well under a second and sent in
// a few seconds even over a slow link.
const (
	// ReadHeaderTimeout bounds the wait for a request's header, the
	// slowloris attack (a header sent a byte at a time). A real client
	// sends its header in one packet.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading the whole request; no endpoint takes a
	// body, so it is the header's bound with a little slack.
	ReadTimeout = 15 * time.Second
	// WriteTimeout bounds the time from the end of the request header to
	// the end of the response: a client that reads slowly, or not at all,
	// holds its request's buffers (a whole scrape body) and its
	// concurrency slot (Limit) at most this long. Three times Prometheus'
	// default scrape_timeout (10 s), so no scrape Prometheus would still
	// wait for is cut off.
	WriteTimeout = 30 * time.Second
	// IdleTimeout closes a kept-alive connection no request arrives on;
	// longer than the usual scrape intervals (15-60 s), so Prometheus
	// keeps its connection between scrapes.
	IdleTimeout = 90 * time.Second
	// MaxHeaderBytes bounds a request header; basic auth and the usual
	// headers fit many times over.
	MaxHeaderBytes = 16 << 10
	// MaxBodyBytes bounds a request body. No endpoint reads one; the
	// bound keeps the server from reading a large one to reuse the
	// connection.
	MaxBodyBytes = 4 << 10
)

// Concurrency bounds for the expensive endpoints. /metrics and
// /api/v1/status build their whole answer in memory (13 MB and 4 MB at
// 10,000 real servers), so their concurrency bounds the agent's memory and,
// as much, its CPU: Go's scheduler has no priorities, so every answer being
// built at once delays the VRRP timers' goroutines. Measured with 10,000
// real servers (deploy/lab TestHTTPSlowClients), four status answers built
// at once made adverts up to 250 ms late, one at a time 56 ms (the host's
// own noise). Two scrapes at once serve a Prometheus HA pair; status is
// for people and `keepwatch status`, one at a time. The other endpoints
// (health, readiness, the landing page) are cheap and unbounded.
const (
	MetricsConcurrency = 2
	StatusConcurrency  = 1
	// QueueWait is how long a request over the bound waits for a slot
	// before it is refused with 503: long enough to ride out another
	// scrape finishing, short enough that waiting clients hold nothing
	// but a goroutine.
	QueueWait = 2 * time.Second
)

// Server returns an http.Server for h with the limits above; h is also
// wrapped with MaxBodyBytes. Its Addr and TLS settings are the caller's
// (exporter-toolkit's web.ListenAndServe keeps the timeouts).
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, MaxBodyBytes),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Limit serves at most n requests of h at once. A request over the bound
// waits up to wait for a slot, then is refused with 503 Service
// Unavailable and a Retry-After, which Prometheus records as a failed
// scrape (up 0) rather than a hung one. A client that goes away while it
// waits frees nothing, because it held nothing.
func Limit(h http.Handler, n int, wait time.Duration) http.Handler {
	slots := make(chan struct{}, n)
	retry := strconv.Itoa(max(int(wait.Round(time.Second)/time.Second), 1))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			t := time.NewTimer(wait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				w.Header().Set("Retry-After", retry)
				http.Error(w, "too many concurrent requests", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}
