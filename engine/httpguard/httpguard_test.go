package httpguard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLimit: n requests run at once; one more waits, gets the slot a
// finishing request frees, and one that finds none within the wait is
// refused with 503 and a Retry-After.
func TestLimit(t *testing.T) {
	const n = 2
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h := Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		if r.URL.Path == "/block" {
			<-release
		}
		io.WriteString(w, "ok")
	}), n, 300*time.Millisecond)
	srv := httptest.NewServer(h)
	defer srv.Close()

	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/block")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range n {
		<-entered
	}
	start := time.Now()
	resp, err := http.Get(srv.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the bound: %d %q Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("refused after %v, before the wait", d)
	}

	// A waiting request gets the slot a finished one frees.
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/fast")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)
	release <- struct{}{}
	if code := <-got; code != http.StatusOK {
		t.Errorf("waiting request: status %d, want 200", code)
	}
	close(release)
	wg.Wait()
}

// TestServerBodyLimit: a request body over MaxBodyBytes fails to read.
func TestServerBodyLimit(t *testing.T) {
	read := make(chan error, 1)
	s := Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		read <- err
	}))
	srv := httptest.NewUnstartedServer(s.Handler)
	srv.Config = s
	srv.Start()
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader(strings.Repeat("x", MaxBodyBytes+1)))
	if err == nil {
		resp.Body.Close()
	}
	if err := <-read; err == nil {
		t.Error("a body over MaxBodyBytes was read whole")
	}
	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-read; err != nil {
		t.Errorf("small body: %v", err)
	}
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Errorf("server without a timeout: %+v", s)
	}
}
