package nskit_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestHTTPClient serves HTTP on node 1's loopback and checks that node 1's
// client reaches it while node 2's client and the host's cannot: each
// namespace has its own loopback.
func TestHTTPClient(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "http", 2)
	a, b := l.Node(1), l.Node(2)
	var lis net.Listener
	if err := a.Do(func() (err error) {
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "node1") }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + lis.Addr().String() + "/"

	resp, err := a.HTTPClient(5*time.Second, nil).Get(url)
	if err != nil {
		t.Fatalf("from node 1: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "node1" || resp.StatusCode != http.StatusOK {
		t.Fatalf("from node 1: %d %q %v, want 200 \"node1\"", resp.StatusCode, body, err)
	}
	if !resp.Close {
		// DisableKeepAlives makes the transport ask for Connection: close.
		t.Errorf("request kept its connection alive; want a fresh dial per request")
	}

	if _, err := b.HTTPClient(5*time.Second, nil).Get(url); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("from node 2: err = %v, want connection refused (its own loopback)", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := a.DialContext(ctx, "tcp", lis.Addr().String()); err == nil {
		c.Close()
		t.Errorf("DialContext with a cancelled context succeeded")
	}
}
