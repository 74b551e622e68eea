package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// IPVS weights (linux/ip_vs.h holds a weight in an int; keepalived limits
// configured weights to IPVS_WEIGHT_MAX).
const (
	MaxWeight = 65535
	// faultWeight is keepalived's IPVS_WEIGHT_FAULT: a FILE_CHECK weight
	// contribution at or below it takes the real server down.
	faultWeight = -MaxWeight - 1
)

// maxTrackFile bounds how much of a track file is read; the value is its
// first number.
const maxTrackFile = 4096

// ProbeFile is FILE_CHECK: the tracked file holds an integer (a missing,
// empty or unreadable file counts as 0, keepalived's initial value). With
// no weight, a non-zero value is down (with `reverse`, zero is down). With a
// weight, value × weight (negated by `reverse`) is this checker's
// contribution to the real server's weight (Result.Weight), and a
// contribution at or below IPVS_WEIGHT_FAULT is down (keepalived
// track_file.c process_update_checker_track_file_status). keepalived
// watches the file with inotify; keepwatch reads it every delay_loop, at
// most FilePoll apart (FromConfig caps it).
func ProbeFile(_ context.Context, t *Target) Result {
	if t.File == nil || t.TrackFile == "" {
		return fail(ReasonConfig, errors.New("FILE_CHECK without a track_file"))
	}
	v := readTrackFile(t.TrackFile)
	if t.File.Weight == 0 {
		if (v != 0) != t.File.Reverse {
			return fail(ReasonFile, fmt.Errorf("track_file %q value %d", t.TrackFile, v))
		}
		return ok
	}
	w := v * int64(t.File.Weight)
	if t.File.Reverse {
		w = -w
	}
	w = max(min(w, 1<<31-1), -1<<31)
	if w <= faultWeight {
		return Result{Reason: ReasonFile, Weight: int(w), SetWeight: true,
			Err: fmt.Errorf("track_file %q value %d: weight %d", t.TrackFile, v, w)}
	}
	return Result{OK: true, Weight: int(w), SetWeight: true}
}

// readTrackFile returns the integer at the start of the file at path, 0 if
// there is none.
func readTrackFile(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, maxTrackFile)
	n, _ := f.Read(buf)
	fields := bytes.Fields(buf[:n])
	if len(fields) == 0 {
		return 0
	}
	v, err := strconv.ParseInt(string(fields[0]), 10, 32)
	if err != nil {
		// keepalived reads the value as a C int; out of range saturates.
		if errors.Is(err, strconv.ErrRange) {
			return v
		}
		return 0
	}
	return v
}
