package track

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
)

// File watches a track_file with inotify and reports its numeric value
// whenever the file is written, moved in or removed (a removed file counts
// as 0), as keepalived does (vrrp_track.c process_inotify). The file is
// read with ReadRegular: a FIFO, device or directory in its place is an
// error state (State.Err, which faults the instances that track it), never
// a read that blocks. Nothing is locked while it reads.
type File struct {
	Name string
	Path string
	// Init, when not nil, writes this value to the file at start if it does
	// not exist (or always, with InitOverwrite): keepalived's init_file.
	// It is written with WriteInit (never through a symbolic link).
	Init          *int
	InitOverwrite bool
	Sink          event.Sink
	OnChange      func(State)
	// Log receives init_file failures (the tracker runs on without it);
	// nil discards them.
	Log *slog.Logger
}

// ReadValue reads a track file (ReadRegular) and parses it (ParseValue). A
// missing file is 0 with no error, as in keepalived; a file that is not a
// regular file, or cannot be read, is 0 with the error.
func ReadValue(path string) (int64, error) {
	b, err := ReadRegular(path, MaxFileRead)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return ParseValue(b), nil
}

// Run blocks until ctx is cancelled. It reports the initial value first.
func (f *File) Run(ctx context.Context) error {
	if f.Init != nil {
		if _, err := WriteInit(f.Path, *f.Init, f.InitOverwrite); err != nil && f.Log != nil {
			f.Log.Error("track_file: init_file not written", "name", f.Name, "err", err)
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
	last, lastErr := f.read()
	f.report(last, lastErr)
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
			if v, e := f.read(); v != last || e != lastErr {
				last, lastErr = v, e
				f.report(v, e)
			}
		}
	}
	return nil
}

func (f *File) read() (int64, string) {
	v, err := ReadValue(f.Path)
	if err != nil {
		return v, err.Error()
	}
	return v, ""
}

func (f *File) report(v int64, errText string) {
	id := event.NewID()
	if f.Sink != nil {
		e := event.Event{Kind: event.KindFileValue, ID: id, Time: time.Now(), Name: f.Name, Value: v}
		if errText != "" {
			e.Err = errors.New(errText)
		}
		f.Sink.Emit(e)
	}
	if f.OnChange != nil {
		f.OnChange(State{Known: true, Value: v, Err: errText, Cause: id})
	}
}
