package vm

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Archive is an initramfs being assembled: a set of files, directories and
// symlinks written out as a newc cpio, the format the kernel unpacks
// (Documentation/driver-api/early-userspace/buffer-format.rst).
type Archive struct {
	entries map[string]entry
}

type entry struct {
	mode uint32 // type and permission bits
	data []byte // file contents or symlink target
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]entry{}} }

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// mkdirs adds every parent directory of name.
func (a *Archive) mkdirs(name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
}

// Dir adds a directory.
func (a *Archive) Dir(name string) {
	name = clean(name)
	a.mkdirs(name)
	a.entries[name] = entry{mode: modeDir | 0o755}
}

// File adds a regular file with permission bits perm.
func (a *Archive) File(name string, data []byte, perm uint32) {
	name = clean(name)
	a.mkdirs(name)
	a.entries[name] = entry{mode: modeFile | perm&0o7777, data: data}
}

// Symlink adds a symbolic link name → target.
func (a *Archive) Symlink(name, target string) {
	name = clean(name)
	a.mkdirs(name)
	a.entries[name] = entry{mode: modeLink | 0o777, data: []byte(target)}
}

// Has reports whether name is in the archive.
func (a *Archive) Has(name string) bool { _, ok := a.entries[clean(name)]; return ok }

// WriteTo writes the archive as newc cpio, parents before children.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names) // "a" sorts before "a/b"
	bw := bufio.NewWriter(w)
	var n int64
	ino := uint32(1)
	for _, name := range names {
		e := a.entries[name]
		nlink := uint32(1)
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		m, err := writeEntry(bw, ino, e.mode, nlink, name, e.data)
		n += m
		if err != nil {
			return n, err
		}
		ino++
	}
	m, err := writeEntry(bw, 0, 0, 1, "TRAILER!!!", nil)
	n += m
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

func writeEntry(w *bufio.Writer, ino, mode, nlink uint32, name string, data []byte) (int64, error) {
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	var n int64
	k, _ := w.WriteString(hdr)
	n += int64(k)
	k, _ = w.WriteString(name)
	n += int64(k)
	k, _ = w.Write(make([]byte, 1+pad(len(hdr)+len(name)+1)))
	n += int64(k)
	k, _ = w.Write(data)
	n += int64(k)
	k, err := w.Write(make([]byte, pad(len(data))))
	n += int64(k)
	return n, err
}

func pad(n int) int { return (4 - n%4) % 4 }
