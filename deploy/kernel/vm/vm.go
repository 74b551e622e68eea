package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Deterministic makes the guest's clock count executed instructions
// (qemu -icount, 2^3 ns each, idle time skipped) instead of following the
// host's: timings inside the guest then measure work done and do not
// stretch when other processes compete for the host's CPUs.
var Deterministic = []string{"-icount", "shift=3,sleep=off"}

// Image describes what goes into the initramfs.
type Image struct {
	// Version is the kernel release whose modules are packed (/lib/modules/VERSION).
	Version string
	// Modules are loaded in /init, with their dependencies, in the order
	// modprobe --show-depends gives.
	Modules []string
	// Binaries are host executables packed at the same path, with the
	// shared libraries ldd lists for them.
	Binaries []string
	// Files are extra files by path in the image; they are made executable.
	Files map[string][]byte
	// Script is the shell run by /init after the modules are loaded and
	// loopback is up. /init powers the machine off when it returns.
	Script string
}

// Busybox is where Debian's busybox-static installs its binary.
const Busybox = "/bin/busybox"

// FindKernel returns the release and vmlinuz path of an installed kernel
// that also has its modules installed; the newest such, by name.
func FindKernel() (version, vmlinuz string, err error) {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	for i := len(ks) - 1; i >= 0; i-- {
		v := strings.TrimPrefix(filepath.Base(ks[i]), "vmlinuz-")
		if _, err := os.Stat(filepath.Join("/lib/modules", v, "modules.dep")); err == nil {
			return v, ks[i], nil
		}
	}
	return "", "", errors.New("vm: no /boot/vmlinuz-* with /lib/modules/VERSION/modules.dep (install linux-image-amd64)")
}

// ModulePaths resolves names and their dependencies to module files, in
// load order, with `modprobe -S version --show-depends`.
func ModulePaths(version string, names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		b, err := exec.Command("modprobe", "-S", version, "--show-depends", n).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("vm: modprobe --show-depends %s: %v: %s", n, err, bytes.TrimSpace(b))
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "insmod" {
				continue // "builtin NAME" needs nothing
			}
			if !seen[f[1]] {
				seen[f[1]] = true
				out = append(out, f[1])
			}
		}
	}
	return out, nil
}

// libraries returns the shared objects ldd lists for bin (nil for a static binary).
func libraries(bin string) ([]string, error) {
	b, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if bytes.Contains(b, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("vm: ldd %s: %v: %s", bin, err, bytes.TrimSpace(b))
	}
	var libs []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the dynamic loader
		}
	}
	return libs, nil
}

// Build assembles the initramfs as a newc cpio at dst.
func Build(img Image, dst string) error {
	a := NewArchive()
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		return fmt.Errorf("vm: busybox-static: %w", err)
	}
	a.File("bin/busybox", bb, 0o755)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "sbin", "usr/bin", "usr/sbin", "run"} {
		a.Dir(d)
	}

	mods, err := ModulePaths(img.Version, img.Modules)
	if err != nil {
		return err
	}
	var order []string
	for i, m := range mods {
		b, err := os.ReadFile(m)
		if err != nil {
			return fmt.Errorf("vm: module: %w", err)
		}
		if strings.HasSuffix(m, ".xz") || strings.HasSuffix(m, ".zst") || strings.HasSuffix(m, ".gz") {
			return fmt.Errorf("vm: module %s is compressed; this kernel tier packs uncompressed modules only", m)
		}
		name := fmt.Sprintf("%02d-%s", i, path.Base(m))
		a.File("mods/"+name, b, 0o644)
		order = append(order, name)
	}

	for _, bin := range img.Binaries {
		libs, err := libraries(bin)
		if err != nil {
			return err
		}
		for _, f := range append([]string{bin}, libs...) {
			if a.Has(f) {
				continue
			}
			b, err := os.ReadFile(f) // follows symlinks: the image gets the file itself
			if err != nil {
				return fmt.Errorf("vm: %w", err)
			}
			a.File(f, b, 0o755)
		}
	}
	for name, b := range img.Files {
		a.File(name, b, 0o755)
	}

	var init strings.Builder
	init.WriteString("#!/bin/busybox sh\n")
	init.WriteString("/bin/busybox --install -s\n")
	init.WriteString("export PATH=/sbin:/usr/sbin:/bin:/usr/bin\n")
	init.WriteString("mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev\n")
	for _, m := range order {
		fmt.Fprintf(&init, "insmod /mods/%s || echo 'KWVM: insmod %s failed'\n", m, m)
	}
	init.WriteString("ip link set lo up\n")
	init.WriteString(img.Script)
	init.WriteString("\nsync\npoweroff -f\n")
	a.File("init", []byte(init.String()), 0o755)

	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := a.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("vm: write initramfs: %w", err)
	}
	return f.Close()
}

// Boot runs vmlinuz with initrd under qemu-system-x86_64 (TCG: no KVM here)
// until the guest powers off or ctx ends, and returns the serial console.
// extra are further qemu arguments.
func Boot(ctx context.Context, vmlinuz, initrd string, memMB int, extra ...string) (string, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("vm: qemu-system-x86_64 not found (install qemu-system-x86): %w", err)
	}
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-cpu", "max", "-m", fmt.Sprint(memMB), "-smp", "1",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet")
	cmd.Args = append(cmd.Args, extra...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("vm: guest did not finish: %w", ctx.Err())
	}
	if err != nil {
		return out.String(), fmt.Errorf("vm: qemu: %w", err)
	}
	return out.String(), nil
}
