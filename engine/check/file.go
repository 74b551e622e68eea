package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/keepwatch/keepwatch/engine/track"
)

// IPVS weights (linux/ip_vs.h holds a weight in an int; keepalived limits
// configured weights to IPVS_WEIGHT_MAX).
const (
	MaxWeight = 65535
	// faultWeight is keepalived's IPVS_WEIGHT_FAULT: a FILE_CHECK weight
	// contribution at or below it takes the real server down.
	faultWeight = -MaxWeight - 1
)

// ProbeFile is FILE_CHECK: the tracked file holds an integer (a missing,
// empty or unreadable file counts as 0, keepalived's initial value). With
// no weight, a non-zero value is down (with `reverse`, zero is down). With a
// weight, value × weight (negated by `reverse`) is this checker's
// contribution to the real server's weight (Result.Weight), and a
// contribution at or below IPVS_WEIGHT_FAULT is down (keepalived
// track_file.c process_update_checker_track_file_status). keepalived
// watches the file with inotify; keepwatch reads it every delay_loop, at
// most FilePoll apart (FromConfig caps it). The file is read with
// track.ReadRegular (at most track.MaxFileRead bytes, never blocking): a
// FIFO, device or directory in its place fails the checker.
func ProbeFile(_ context.Context, t *Target) Result {
	if t.File == nil || t.TrackFile == "" {
		return fail(ReasonConfig, errors.New("FILE_CHECK without a track_file"))
	}
	v, err := readTrackFile(t.TrackFile)
	if err != nil {
		return fail(ReasonFile, fmt.Errorf("track_file %q: %w", t.TrackFile, err))
	}
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
// there is none or the file does not exist (keepalived's initial value);
// an error for a file that is not a regular file or cannot be read.
func readTrackFile(path string) (int64, error) {
	b, err := track.ReadRegular(path, track.MaxFileRead)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return parseFileValue(b), nil
}

// parseFileValue is FILE_CHECK's reading of the file's content: its first
// word as a decimal C int, out of range saturating, anything else 0.
func parseFileValue(b []byte) int64 {
	fields := bytes.Fields(b)
	if len(fields) == 0 {
		return 0
	}
	v, err := strconv.ParseInt(string(fields[0]), 10, 32)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return v
		}
		return 0
	}
	return v
}
