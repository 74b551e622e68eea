package track

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxFileRead is how much of a track_file or FILE_CHECK file is read. The
// value is one number at the start of the file (keepalived reads it with
// strtol / fscanf), so one page holds any sensible content, and bounds the
// memory and time a read costs whatever the file's size: a 1 GB file (or a
// sparse one claiming to be) costs one 4 KiB read.
const MaxFileRead = 4096

// ErrNotRegular is returned for a tracked file that is a FIFO, device,
// socket or directory: reading one could block forever (a FIFO with no
// writer) or have side effects (a device), so keepwatch never reads it.
var ErrNotRegular = errors.New("not a regular file")

// ReadRegular returns up to max bytes from the start of the regular file at
// path, following symbolic links (another process owns the file and may
// replace it by a link). It cannot block: the file is checked with stat
// before it is opened, opened with O_NONBLOCK (so a FIFO swapped in between
// does not wait for a writer), and checked again with fstat on the open
// descriptor before the one read.
func ReadRegular(path string, max int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileType(st.Mode))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileType(st.Mode))
	}
	buf := make([]byte, max)
	n := 0
	for n < max {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "mode " + strconv.FormatUint(uint64(mode&unix.S_IFMT), 8)
}

// WriteInit writes init_file's value: it creates the file if it does not
// exist, or (overwrite) replaces its content, but never writes through a
// symbolic link (O_NOFOLLOW; with O_EXCL for a new file) nor into anything
// but a regular file (a FIFO or device is refused before anything is
// written, checked with fstat on the open descriptor). keepwatch runs as
// root and the directory may be writable by the process that feeds the
// file, so following a link planted there would let it make keepwatch
// overwrite any file. It reports whether it wrote.
func WriteInit(path string, value int, overwrite bool) (bool, error) {
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	if !overwrite {
		flags |= unix.O_EXCL
	}
	fd, err := unix.Open(path, flags, 0o644)
	switch {
	case err == unix.EEXIST && !overwrite:
		return false, nil // it exists (a link counts): keepalived leaves it
	case err == unix.ELOOP:
		return false, fmt.Errorf("init_file %s: is a symbolic link: refusing to write through it", path)
	case err == unix.ENXIO:
		return false, fmt.Errorf("init_file %s: %w (fifo)", path, ErrNotRegular)
	case err != nil:
		return false, &os.PathError{Op: "init_file", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("init_file %s: %w (%s)", path, ErrNotRegular, fileType(st.Mode))
	}
	if err := f.Truncate(0); err != nil {
		return false, err
	}
	if _, err := io.WriteString(f, strconv.Itoa(value)+"\n"); err != nil {
		return false, err
	}
	return true, nil
}
