package lb

// TestKernelTier builds this package's tests as a static binary, packs it
// with busybox-static, ipvsadm, the ip_vs modules of the installed Debian
// kernel and keepalived's sample configs into an initramfs, boots that
// kernel under qemu (TCG) and runs itself inside with KEEPWATCH_VM=lb:
// there the Balancer runs the samples against the kernel's real IPVS
// (vmtier_test.go).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/kernel/vm"
)

// vmModules: IPVS with the schedulers the samples use, and dummy for the
// test addresses.
var vmModules = []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc", "dummy"}

// vmNet is the guest's network: one dummy interface holding the virtual
// addresses (192.0.2.0/24) and the real servers (198.51.100.0/24), all
// local, so checkers and clients reach them inside the guest.
const vmNet = `
ip link add kw0 type dummy
ip link set kw0 up
ip addr add 192.0.2.1/24 dev kw0
ip addr add 198.51.100.1/24 dev kw0
for i in $(seq 10 60); do ip addr add 192.0.2.$i/32 dev kw0; ip addr add 198.51.100.$i/32 dev kw0; done
`

const (
	sampleDir   = "/usr/share/doc/keepalived/samples"
	vmSampleDir = "/samples"
)

// vmSamples are the keepalived sample configs the kernel tier runs.
var vmSamples = []string{"keepalived.conf.sample", "keepalived.conf.HTTP_GET.port", "keepalived.conf.misc_check",
	"keepalived.conf.fwmark", "keepalived.conf.virtual_server_group", "keepalived.conf.quorum", "keepalived.conf.inhibit"}

func TestKernelTier(t *testing.T) {
	switch os.Getenv("KEEPWATCH_VM") {
	case "lb":
		kernelTier(t)
		return
	case "":
	default:
		return // another mode's guest
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("boots a VM; not in -short")
	}
	out, ok := bootSelf(t, "-test.run=^TestKernelTier$ -test.v -test.count=1", 4*time.Minute)
	t.Logf("guest output:\n%s", out)
	if !ok || !strings.Contains(out, "--- PASS: TestKernelTier") {
		t.Fatal("KERNEL TIER FAILED in the VM (see guest output above)")
	}
}

// bootSelf boots this package's test binary in a VM with KEEPWATCH_VM=lb
// and the given test flags (vm.RunSelf), and returns the console output
// between the markers and whether the guest's test binary exited 0.
func bootSelf(tb testing.TB, flags string, timeout time.Duration) (string, bool) {
	tb.Helper()
	files := map[string][]byte{}
	for _, name := range vmSamples {
		b, err := os.ReadFile(filepath.Join(sampleDir, name))
		if err != nil {
			tb.Fatalf("keepalived sample (install keepalived): %v", err)
		}
		files[vmSampleDir+"/"+name] = b
	}
	return vm.RunSelf(tb, vm.Self{
		Name:     "lb.test",
		Mode:     "lb",
		Flags:    flags,
		Setup:    vmNet,
		Modules:  vmModules,
		Binaries: []string{"/usr/sbin/ipvsadm"},
		Files:    files,
		Timeout:  timeout,
	})
}
