package nskit

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// DialContext dials from inside the node's namespace: servers a test starts
// there (agents, Prometheus, receivers) listen on addresses the host's
// namespace cannot reach. ctx bounds the connect, as for net.Dialer.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// dialTimeout bounds each connect of an HTTPClient, well inside the
// request timeout, so a dead listener shows up as a dial error.
const dialTimeout = 2 * time.Second

// HTTPClient returns a client whose connections are opened inside the node's
// namespace, with the given overall request timeout and TLS settings (nil for
// the defaults). Keep-alives are off: every request dials afresh, so a test
// observes a restarted or stopped server at once rather than through a stale
// pooled connection.
func (n *Node) HTTPClient(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return n.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   tlsConfig,
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}
