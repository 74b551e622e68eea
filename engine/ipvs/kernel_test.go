package ipvs

// The kernel tier (DESIGN.md §8.3): this host's kernel has no IPVS, so
// TestKernelTier builds this package's tests as a static binary, packs it
// with busybox-static, ipvsadm and the ip_vs modules of the installed Debian
// kernel into an initramfs, boots that kernel under qemu (TCG) and runs
// itself inside with KEEPWATCH_VM=tier. The same test function is both
// sides: on the host it boots the VM, in the VM it talks to the real IPVS.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/kernel/vm"
)

// vmModules are loaded in the guest: IPVS, every scheduler this kernel
// builds (twos is not in Debian 6.1), and dummy for the test addresses.
var vmModules = []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc",
	"ip_vs_lblcr", "ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf",
	"ip_vs_mh", "dummy"}

// vmNet is the guest's network: one dummy interface holding the virtual
// addresses (192.0.2.0/24, 2001:db8:0:1::/64) and the real servers
// (198.51.100.0/24, 2001:db8:0:2::/64), all documentation ranges.
const vmNet = `
ip link add kw0 type dummy
ip link set kw0 up
ip addr add 192.0.2.10/24 dev kw0
ip addr add 198.51.100.1/24 dev kw0
ip addr add 198.51.100.2/24 dev kw0
ip -6 addr add 2001:db8:0:1::10/64 dev kw0 nodad
ip -6 addr add 2001:db8:0:2::1/64 dev kw0 nodad
`

// vmSampleDir is where the guest finds keepalived's sample configs.
const vmSampleDir = "/samples"

// bootSelf boots this package's test binary in a VM with KEEPWATCH_VM=mode
// and the given test flags (vm.RunSelf), and returns the console output
// between the markers and whether the guest's test binary exited 0.
func bootSelf(tb testing.TB, mode string, flags string, timeout time.Duration, qemuArgs ...string) (string, bool) {
	tb.Helper()
	files := map[string][]byte{}
	for _, p := range sampleConfigs(tb) {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		files[vmSampleDir+"/"+filepath.Base(p)] = b
	}
	return vm.RunSelf(tb, vm.Self{
		Name:     "ipvs.test",
		Mode:     mode,
		Flags:    flags,
		Setup:    vmNet,
		Modules:  vmModules,
		Binaries: []string{"/usr/sbin/ipvsadm"},
		Files:    files,
		Timeout:  timeout,
		QEMUArgs: qemuArgs,
	})
}

// TestKernelTier runs the in-VM IPVS tests (kernelTier) in a real kernel.
func TestKernelTier(t *testing.T) {
	if os.Getenv("KEEPWATCH_VM") == "tier" {
		kernelTier(t)
		return
	}
	if os.Getenv("KEEPWATCH_VM") != "" {
		return // another mode's guest: nothing to do here
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("boots a VM; not in -short")
	}
	out, ok := bootSelf(t, "tier", "-test.run=^TestKernelTier$ -test.v -test.count=1", 4*time.Minute)
	t.Logf("guest output:\n%s", out)
	if !ok || !strings.Contains(out, "--- PASS: TestKernelTier") {
		t.Fatal("KERNEL TIER FAILED in the VM (see guest output above)")
	}
}

// TestKernelModprobe boots a guest whose IPVS modules are installed but not
// loaded, as on a fresh host, and checks that Open loads ip_vs as
// keepalived does (modprobe_ipvs) and that the kernel then loads each
// scheduler's module when a service names it.
func TestKernelModprobe(t *testing.T) {
	switch os.Getenv("KEEPWATCH_VM") {
	case "modprobe":
		modprobeTier(t)
		return
	case "":
	default:
		return
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("boots a VM; not in -short")
	}
	version, _, err := vm.FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	// The modules go where modprobe looks for them, with the kernel's own
	// modules.dep. Only dummy and the crc32c crypto are loaded at boot:
	// busybox's modprobe does not follow libcrc32c's softdep on crc32c,
	// which a host's kmod modprobe does.
	mods, err := vm.ModulePaths(version, []string{"ip_vs_wlc", "ip_vs_mh"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range append(mods, filepath.Join("/lib/modules", version, "modules.dep")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	out, ok := vm.RunSelf(t, vm.Self{
		Name:     "ipvs.test",
		Mode:     "modprobe",
		Flags:    "-test.run=^TestKernelModprobe$ -test.v -test.count=1",
		Setup:    vmNet,
		Modules:  []string{"dummy", "crc32c_generic"},
		Binaries: []string{"/usr/sbin/ipvsadm"},
		Files:    files,
		Timeout:  4 * time.Minute,
	})
	t.Logf("guest output:\n%s", out)
	if !ok || !strings.Contains(out, "--- PASS: TestKernelModprobe") {
		t.Fatal("KERNEL MODPROBE TIER FAILED in the VM (see guest output above)")
	}
}
