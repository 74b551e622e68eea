package notify

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzMailReplies feeds arbitrary server replies to the SMTP dialogue: it
// must end (every step has a deadline) without panicking, and succeed only
// if the server said 354 to DATA somewhere.
func FuzzMailReplies(f *testing.F) {
	f.Add([]byte("220 mx\r\n250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n"))
	f.Add([]byte("220-mx\r\n220 mx\r\n250-hi\r\n250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"))
	f.Add([]byte("220 mx\r\n550 no\r\n"))
	f.Add([]byte("554 go away\r\n"))
	f.Add([]byte("220 mx\r\n250"))
	f.Add([]byte("2"))
	f.Add([]byte{})
	f.Add([]byte("220 mx\r\n250-\r\n25x ok\r\n"))
	mc := &mailConfig{from: "a@example.com", to: []string{"b@example.com"}, helo: "h", routerID: "r",
		timeout: 20 * time.Millisecond}
	f.Fuzz(func(t *testing.T, replies []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			go func() { _, _ = io.Copy(io.Discard, server) }()
			_, _ = server.Write(replies)
			// Then silence: the client's deadline ends the dialogue.
		}()
		err := converse(context.Background(), client, mc, message{subject: "s", body: "b"}, time.Unix(0, 0))
		client.Close()
		server.Close()
		<-done
		if err == nil && !bytes.Contains(replies, []byte("354")) {
			t.Fatalf("success without 354 in %q", replies)
		}
		if err != nil && classOf(err) == "" {
			t.Fatalf("error without class: %v", err)
		}
	})
}
