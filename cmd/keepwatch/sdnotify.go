package main

import (
	"context"
	"net"
	"os"
	"time"
)

// sdNotify sends a state line to systemd's notification socket, if there is
// one (Type=notify units: Debian's keepalived.service is one, so keepwatch
// installed as keepalived must say READY=1 or be killed at the start
// timeout). Without NOTIFY_SOCKET it does nothing.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// notifyWhenReady tells systemd READY=1 once ready() holds, and STOPPING=1
// when ctx ends.
func notifyWhenReady(ctx context.Context, ready func() bool) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	_ = sdNotify("READY=1")
	<-ctx.Done()
	_ = sdNotify("STOPPING=1")
}
