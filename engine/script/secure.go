package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Errors Check returns. keepalived disables a script for each of them
// (lib/notify.c check_notify_script_secure: SC_INHIBIT, SC_NOTFOUND or not
// SC_EXECUTABLE); keepwatch refuses to run it.
var (
	// ErrInsecure: a non-root user could change what runs as root.
	ErrInsecure = errors.New("unsafe permissions")
	// ErrNotFound: the script or a directory on its path cannot be found.
	ErrNotFound = errors.New("script not found")
	// ErrNotExecutable: the script user cannot execute the file.
	ErrNotExecutable = errors.New("script not executable")
	// ErrWrongType: a path component is not a directory, or the script is
	// neither a regular file nor a symbolic link.
	ErrWrongType = errors.New("wrong file type in script path")
)

// Check applies keepalived's script checks (lib/notify.c
// check_script_secure and check_security) to argv0 run as id, and returns
// the path that will be executed. A bare name is looked up in PATH. When the
// script runs as root (user or group 0) or is set-uid/set-gid root, the
// path as written and the path with symbolic links resolved must not be
// changeable by anyone but root: every component, from "/" down, must be
// owned by root, and a regular file or a directory without the sticky bit
// must not be writable by others, nor by its group unless that group is
// root. A sticky directory owned by root (such as /tmp) passes. Check
// returns an error wrapping ErrInsecure, ErrNotFound, ErrNotExecutable or
// ErrWrongType; enable_script_security decides whether ErrInsecure
// disables the script (keepalived disables for the others regardless).
func Check(argv0 string, id Identity) (string, error) {
	path := argv0
	if !strings.Contains(path, "/") {
		p, err := lookPath(path, id)
		if err != nil {
			return "", err
		}
		path = p
	}
	real, err := filepath.EvalSymlinks(path)
	if err == nil && !filepath.IsAbs(real) {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNotFound, path, err)
	}
	// keepalived runs the resolved path, keeping the name as written when
	// the resolved directory holds the same file under it (some programs
	// act on the name they are called by); so it is the resolved path, not
	// the path as written, whose components must be safe.
	run := real
	if filepath.Base(path) != filepath.Base(real) {
		alt := filepath.Join(filepath.Dir(real), filepath.Base(path))
		if a, b := fileID(alt), fileID(real); a != nil && b != nil && *a == *b {
			run = alt
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNotFound, path, err)
	}
	if !executable(&st, id) {
		return "", fmt.Errorf("%w: %s for uid:gid %d:%d", ErrNotExecutable, path, id.UID, id.GID)
	}
	mode := st.Mode
	if !id.Root() &&
		!(st.Uid == 0 && mode&syscall.S_IXUSR != 0 && mode&syscall.S_ISUID != 0) &&
		!(st.Gid == 0 && mode&syscall.S_IXGRP != 0 && mode&syscall.S_ISGID != 0) {
		return run, nil
	}
	if err := checkComponents(run); err != nil {
		return "", err
	}
	if real != run {
		if err := checkComponents(real); err != nil {
			return "", err
		}
	}
	return run, nil
}

type devIno struct{ dev, ino uint64 }

func fileID(p string) *devIno {
	var st syscall.Stat_t
	if syscall.Stat(p, &st) != nil {
		return nil
	}
	return &devIno{uint64(st.Dev), st.Ino}
}

// checkComponents is keepalived's check_security: "/", then each longer
// prefix of path, is examined without following a final symbolic link.
func checkComponents(path string) error {
	parts := strings.Split(path, "/")
	cur := ""
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case i == 0:
			cur = "/"
		case p == "" && !last:
			continue // "//": keepalived checks the directory once
		case cur == "/":
			cur += p
		default:
			cur += "/" + p
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(cur, &st); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotFound, cur, err)
		}
		typ := st.Mode & syscall.S_IFMT
		isDir, isReg := typ == syscall.S_IFDIR, typ == syscall.S_IFREG
		if (!last && !isDir) || (last && !isReg && typ != syscall.S_IFLNK) {
			return fmt.Errorf("%w: %s", ErrWrongType, cur)
		}
		if st.Uid != 0 {
			return fmt.Errorf("%w: %s is owned by uid %d, not root", ErrInsecure, cur, st.Uid)
		}
		if (isDir && st.Mode&syscall.S_ISVTX == 0) || isReg {
			if st.Mode&0o002 != 0 {
				return fmt.Errorf("%w: %s is writable by others", ErrInsecure, cur)
			}
			if st.Gid != 0 && st.Mode&0o020 != 0 {
				return fmt.Errorf("%w: %s is writable by group %d", ErrInsecure, cur, st.Gid)
			}
		}
	}
	return nil
}

// executable is keepalived's is_executable: root needs any x bit; the owner
// the user bit; a member of the file's group (by the script's primary
// group, the only group a script gets) the group bit; others the other bit.
func executable(st *syscall.Stat_t, id Identity) bool {
	m := st.Mode
	switch {
	case id.UID == 0:
		return m&0o111 != 0
	case id.UID == st.Uid:
		return m&0o100 != 0
	case id.GID == st.Gid:
		return m&0o010 != 0
	}
	return m&0o001 != 0
}

// lookPath searches PATH for a regular file id can execute, as keepalived's
// find_path does (it warns that a full path should be given).
func lookPath(name string, id Identity) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty command", ErrNotFound)
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	denied := false
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil {
			continue
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG || !executable(&st, id) {
			denied = true
			continue
		}
		return p, nil
	}
	if denied {
		return "", fmt.Errorf("%w: %s in PATH for uid %d", ErrNotExecutable, name, id.UID)
	}
	return "", fmt.Errorf("%w: %s in PATH", ErrNotFound, name)
}
