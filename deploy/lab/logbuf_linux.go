package lab

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
)

// logLines keeps the tail of a node's output.
const logLines = 2000

type logBuffer struct {
	mu    sync.Mutex
	node  int
	lines []string
	part  []byte
	tee   io.Writer
	file  *os.File
	// states is the last state keepalived logged per instance.
	states map[string]string
}

func newLogBuffer(node int, tee io.Writer, path string) *logBuffer {
	f, _ := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return &logBuffer{node: node, tee: tee, file: f, states: map[string]string{}}
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_, _ = l.file.Write(p)
	}
	l.part = append(l.part, p...)
	for {
		i := strings.IndexByte(string(l.part), '\n')
		if i < 0 {
			break
		}
		l.line(string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *logBuffer) line(s string) {
	if m := kaStateRE.FindStringSubmatch(s); m != nil {
		l.states[m[1]] = strings.ToLower(m[2] + m[3])
	}
	if l.tee != nil {
		fmt.Fprintf(l.tee, "n%d| %s\n", l.node, s)
	}
	l.lines = append(l.lines, s)
	if len(l.lines) > logLines {
		l.lines = slices.Delete(l.lines, 0, len(l.lines)-logLines)
	}
}

func (l *logBuffer) started(impl Impl) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.states)
	l.line(fmt.Sprintf("--- lab: starting %s", impl))
}

func (l *logBuffer) stopped() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.states {
		l.states[k] = "stop"
	}
}

func (l *logBuffer) kaStates() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.states)
}

// kaLogged reports whether keepalived has logged a state for each of
// the named instances since it was last started.
func (l *logBuffer) kaLogged(names []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range names {
		if _, ok := l.states[name]; !ok {
			return false
		}
	}
	return true
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (l *logBuffer) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		l.file.Close()
		l.file = nil
	}
}
