package track

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
)

// File watches a track_file with inotify and reports its numeric value
// whenever the file is written, moved in or removed (a removed file counts
// as 0), as keepalived does (vrrp_track.c process_inotify).
type File struct {
	Name string
	Path string
	// Init, when not nil, writes this value to the file at start if it does
	// not exist (or always, with InitOverwrite): keepalived's init_file.
	Init          *int
	InitOverwrite bool
	Sink          event.Sink
	OnChange      func(State)
}

// ReadValue reads a track file and parses it with ParseValue; 0 when it
// cannot be read.
func ReadValue(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return ParseValue(b)
}

// Run blocks until ctx is cancelled. It reports the initial value first.
func (f *File) Run(ctx context.Context) error {
	if f.Init != nil {
		if _, err := os.Stat(f.Path); f.InitOverwrite || os.IsNotExist(err) {
			if err := os.WriteFile(f.Path, []byte(strconv.Itoa(*f.Init)+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_DELETE); err != nil {
		return err
	}
	last := ReadValue(f.Path)
	f.report(last)
	buf := make([]byte, 4096)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		// Poll with a short timeout so cancellation is noticed promptly.
		n, err := unix.Poll(pfd, 200)
		if err != nil && err != unix.EINTR {
			return err
		}
		if n <= 0 {
			continue
		}
		nr, err := unix.Read(fd, buf)
		if err != nil || nr < unix.SizeofInotifyEvent {
			continue
		}
		changed := false
		for off := 0; off+unix.SizeofInotifyEvent <= nr; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name := strings.TrimRight(string(nameBytes), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if name == base {
				changed = true
			}
		}
		if changed {
			if v := ReadValue(f.Path); v != last {
				last = v
				f.report(v)
			}
		}
	}
	return nil
}

func (f *File) report(v int64) {
	id := event.NewID()
	if f.Sink != nil {
		f.Sink.Emit(event.Event{Kind: event.KindFileValue, ID: id, Time: time.Now(), Name: f.Name, Value: v})
	}
	if f.OnChange != nil {
		f.OnChange(State{Known: true, Value: v, Cause: id})
	}
}
