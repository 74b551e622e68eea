package boundq

import (
	"sync"
	"testing"
)

// FIFO order across growth and wrap-around, the bound, and the ring let go
// once a burst is drained.
func TestQueue(t *testing.T) {
	q := New[int](1024)
	if q.Cap() != 0 {
		t.Fatalf("new queue holds a ring of %d", q.Cap())
	}
	next, want := 0, 0
	// Interleave pushes and pops so the ring wraps while it grows.
	for round := range 50 {
		for range 25 {
			if !q.Push(next) {
				t.Fatalf("push %d refused at len %d", next, q.Len())
			}
			next++
		}
		for range 20 - round%3 {
			v, ok := q.Pop()
			if !ok || v != want {
				t.Fatalf("pop: %d, %v; want %d", v, ok, want)
			}
			want++
		}
	}
	for q.Len() < 1024 {
		q.Push(next)
		next++
	}
	if q.Push(-1) {
		t.Fatal("push beyond the bound accepted")
	}
	if q.Cap() != 1024 {
		t.Fatalf("full queue ring %d, want 1024", q.Cap())
	}
	for {
		v, ok := q.Pop()
		if !ok {
			break
		}
		if v != want {
			t.Fatalf("pop %d, want %d", v, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped up to %d, pushed up to %d", want, next)
	}
	if q.Cap() > keepRing {
		t.Fatalf("drained queue keeps a ring of %d, want at most %d", q.Cap(), keepRing)
	}
}

// One consumer waiting on Ready sees every element of concurrent producers.
func TestQueueConcurrent(t *testing.T) {
	q := New[int](1 << 20)
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				q.Push(p*each + i)
			}
		}()
	}
	seen := make([]bool, producers*each)
	got := 0
	for got < producers*each {
		<-q.Ready()
		for v, ok := q.Pop(); ok; v, ok = q.Pop() {
			if seen[v] {
				t.Fatalf("%d twice", v)
			}
			seen[v] = true
			got++
		}
	}
	wg.Wait()
}
