package dump

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The files keepalived writes on its dump signals, in its temporary
// directory (make_tmp_filename() in lib/utils.c).
const (
	DataFile  = "keepalived.data"  // SIGUSR1
	StatsFile = "keepalived.stats" // SIGUSR2 (and STATS_CLEAR)
	JSONFile  = "keepalived.json"  // SIGRTMIN+2
)

// Entry is one instance in keepalived.json: {"data": …, "stats": …}.
type Entry struct {
	Data  Data  `json:"data"`
	Stats Stats `json:"stats"`
	// Trackers are the instance's trackers' states, for keepalived.data's
	// script and file sections; keepalived.json has no place for them.
	Trackers []Tracker `json:"-"`
}

// TmpDir is where keepalived puts its dumps: $TMPDIR when it is an
// absolute path, else /tmp.
func TmpDir() string {
	if d := os.Getenv("TMPDIR"); filepath.IsAbs(d) {
		return d
	}
	return "/tmp"
}

// WriteJSON writes keepalived.json's json_version 1 document (2.2.7's): an
// array of {data, stats} on one line. keepalived's JSON writer
// (lib/json_writer.c) escapes "/" as "\/"; so does this, for byte-equal
// strings. A "/" can only occur inside a JSON string, so the replacement is
// safe.
func WriteJSON(w io.Writer, es []Entry) error {
	if es == nil {
		es = []Entry{}
	}
	b, err := json.Marshal(es)
	if err != nil {
		return err
	}
	b = bytes.ReplaceAll(b, []byte("/"), []byte(`\/`))
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteStats writes keepalived.stats as vrrp_print_stats() does
// (keepalived/vrrp/vrrp_print.c).
func WriteStats(w io.Writer, es []Entry) error {
	bw := bufio.NewWriter(w)
	for _, e := range es {
		s := e.Stats
		fmt.Fprintf(bw, "VRRP Instance: %s\n", e.Data.IName)
		fmt.Fprintf(bw, "  Advertisements:\n    Received: %d\n    Sent: %d\n", s.AdvertRcvd, s.AdvertSent)
		fmt.Fprintf(bw, "  Became master: %d\n  Released master: %d\n", s.BecomeMaster, s.ReleaseMaster)
		fmt.Fprintf(bw, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			s.PacketLenErr, s.IPTTLErr, s.InvalidTypeRcvd, s.AdvertIntervalErr, s.AddrListErr)
		fmt.Fprintf(bw, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			s.InvalidAuthType, s.AuthTypeMismatch, s.AuthFailure)
		fmt.Fprintf(bw, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", s.PriZeroRcvd, s.PriZeroSent)
	}
	return bw.Flush()
}

// WriteFile writes a dump file into dir through a temporary file renamed
// into place, so a reader never sees half a dump; mode 0600 as keepalived's.
func WriteFile(dir, name string, write func(io.Writer) error) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return path, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return path, err
	}
	if err := write(f); err != nil {
		f.Close()
		return path, err
	}
	if err := f.Close(); err != nil {
		return path, err
	}
	return path, os.Rename(tmp, path)
}
