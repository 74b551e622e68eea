package ipvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Kernel is the part of a moby/ipvs Handle the reconciler uses, so the diff
// and apply logic can run against a fake in unit tests.
type Kernel interface {
	GetServices() ([]*ipvs.Service, error)
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
	NewService(*ipvs.Service) error
	UpdateService(*ipvs.Service) error
	DelService(*ipvs.Service) error
	NewDestination(*ipvs.Service, *ipvs.Destination) error
	UpdateDestination(*ipvs.Service, *ipvs.Destination) error
	DelDestination(*ipvs.Service, *ipvs.Destination) error
	Flush() error
}

var _ Kernel = (*ipvs.Handle)(nil)

// ErrUnavailable is returned (wrapped) by Open when the running kernel has
// no IPVS: the module is not loaded and could not be, or was never built.
// It is not fatal to an agent: VRRP and checks go on without IPVS.
var ErrUnavailable = errors.New("IPVS is not available in this kernel (modprobe ip_vs?)")

// Open returns a handle on the kernel's IPVS in the current network
// namespace. When the kernel has no IPVS (its generic netlink family is
// unknown) it emits a KindIPVSUnavailable event to sink and returns an error
// wrapping ErrUnavailable. The caller must Close the handle.
func Open(sink event.Sink) (*Handle, error) {
	if sink == nil {
		sink = event.Discard
	}
	// Look the family up ourselves first: moby/ipvs resolves it once per
	// process and, when that fails, still hands out a handle whose every
	// request goes to family 0.
	fam, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		// keepalived loads the module itself when the family is missing
		// (ipvswrapper.c ipvs_start → modprobe_ipvs), then asks again.
		// The schedulers and persistence engines need nothing from us:
		// the kernel loads ip_vs_NAME when a service first names it
		// (ip_vs_sched.c ip_vs_scheduler_get, request_module).
		if merr := modprobeIPVS(); merr != nil {
			err = errors.Join(err, merr)
		} else {
			fam, err = netlink.GenlFamilyGet("IPVS")
		}
	}
	if err != nil {
		err = fmt.Errorf("ipvs: %w: generic netlink family IPVS: %w", ErrUnavailable, err)
		sink.Emit(event.Event{Kind: event.KindIPVSUnavailable, Time: time.Now(), Err: err})
		return nil, err
	}
	h, err := ipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("ipvs: open generic netlink socket: %w", err)
	}
	bc, err := newBatchConn(fam.ID)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("ipvs: open generic netlink socket: %w", err)
	}
	return &Handle{Handle: h, batch: bc}, nil
}

// modprobeIPVS runs `modprobe -s -- ip_vs` as keepalived does: the
// modprobe the kernel itself uses (/proc/sys/kernel/modprobe), else
// /sbin/modprobe.
func modprobeIPVS() error {
	path := "/sbin/modprobe"
	if b, err := os.ReadFile("/proc/sys/kernel/modprobe"); err == nil {
		if p := strings.TrimSpace(string(b)); p != "" {
			path = p
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-s", "--", "ip_vs").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s ip_vs: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

const (
	afInet  = unix.AF_INET
	afInet6 = unix.AF_INET6
)

func af(f vrrp.Family) uint16 {
	if f == vrrp.IPv6 {
		return afInet6
	}
	return afInet
}

// kernelService converts s to the moby/ipvs form.
func kernelService(s *Service) *ipvs.Service {
	ks := &ipvs.Service{
		AddressFamily: af(s.Family),
		SchedName:     string(s.Scheduler),
		Flags:         uint32(s.Flags & settable),
		Timeout:       uint32(s.Timeout / time.Second),
		PEName:        s.PersistenceEngine,
	}
	if s.Hashed {
		ks.Flags |= uint32(flagHashed)
	}
	if s.Timeout > 0 {
		ks.Flags |= uint32(flagPersistent)
		if ks.Timeout == 0 {
			ks.Timeout = 1
		}
	}
	// The netmask attribute is a raw 4-byte field: for IPv4 the mask in
	// network order, for IPv6 a prefix length the kernel checks is 1-128
	// (net/netfilter/ipvs/ip_vs_ctl.c ip_vs_add_service).
	if s.Family == vrrp.IPv6 {
		ks.Netmask = uint32(s.granularity())
	} else {
		ks.Netmask = binary.NativeEndian.Uint32(net.CIDRMask(s.granularity(), 32))
	}
	if s.FWMark != 0 {
		ks.FWMark = s.FWMark
	} else {
		ks.Address = net.IP(s.Addr.AsSlice())
		ks.Protocol = uint16(s.Protocol)
		ks.Port = s.Port
	}
	return ks
}

func kernelDestination(d *Destination) *ipvs.Destination {
	fam := uint16(afInet)
	if d.Addr.Is6() {
		fam = afInet6
	}
	return &ipvs.Destination{
		Address:         net.IP(d.Addr.AsSlice()),
		Port:            d.Port,
		Weight:          d.Weight,
		ConnectionFlags: uint32(d.Forward),
		AddressFamily:   fam,
		UpperThreshold:  d.UpperThreshold,
		LowerThreshold:  d.LowerThreshold,
	}
}

// fromKernelService converts a service read from the kernel.
func fromKernelService(ks *ipvs.Service) Service {
	s := Service{
		Scheduler: Scheduler(ks.SchedName),
		Flags:     Flags(ks.Flags) &^ (flagHashed | flagPersistent),
		Stats: Counters{
			Connections: uint64(ks.Stats.Connections),
			PacketsIn:   uint64(ks.Stats.PacketsIn), PacketsOut: uint64(ks.Stats.PacketsOut),
			BytesIn: ks.Stats.BytesIn, BytesOut: ks.Stats.BytesOut,
		},
	}
	fam := vrrp.IPv4
	if ks.AddressFamily == afInet6 {
		fam = vrrp.IPv6
	}
	if ks.FWMark != 0 {
		s.Key = MarkKey(ks.FWMark, fam)
	} else {
		a, _ := netip.AddrFromSlice(ks.Address)
		s.Key = AddrKey(a, ks.Port, Protocol(ks.Protocol))
		s.Family = fam
	}
	if Flags(ks.Flags)&flagPersistent != 0 {
		s.Timeout = time.Duration(ks.Timeout) * time.Second
	}
	if fam == vrrp.IPv6 {
		s.Granularity = int(ks.Netmask)
	} else {
		var m [4]byte
		binary.NativeEndian.PutUint32(m[:], ks.Netmask)
		s.Granularity, _ = net.IPMask(m[:]).Size()
	}
	if s.Granularity == 32 && fam == vrrp.IPv4 || s.Granularity == 128 {
		s.Granularity = 0
	}
	return s
}

func fromKernelDestination(kd *ipvs.Destination) Destination {
	a, _ := netip.AddrFromSlice(kd.Address)
	return Destination{
		Addr:           a.Unmap(),
		Port:           kd.Port,
		Weight:         kd.Weight,
		Forward:        Forward(kd.ConnectionFlags & ipvs.ConnectionFlagFwdMask),
		UpperThreshold: kd.UpperThreshold,
		LowerThreshold: kd.LowerThreshold,
		Stats: Counters{
			Connections: uint64(kd.Stats.Connections),
			PacketsIn:   uint64(kd.Stats.PacketsIn), PacketsOut: uint64(kd.Stats.PacketsOut),
			BytesIn: kd.Stats.BytesIn, BytesOut: kd.Stats.BytesOut,
			ActiveConnections: kd.ActiveConnections, InactiveConnections: kd.InactiveConnections,
		},
	}
}

// Read returns the kernel's whole IPVS table with its counters. keep, if not
// nil, selects the services whose destinations are read (the others are
// returned without destinations), so a reconciler reads only what it owns.
func Read(k Kernel, keep func(Key) bool) ([]Service, error) {
	if tr, ok := k.(TableReader); ok {
		return tr.ReadTable(keep)
	}
	kss, err := k.GetServices()
	if err != nil {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	out := make([]Service, 0, len(kss))
	for _, ks := range kss {
		s := fromKernelService(ks)
		if keep == nil || keep(s.Key) {
			kds, err := k.GetDestinations(ks)
			if errors.Is(err, unix.ESRCH) {
				continue // deleted since the list: it is not in the table
			}
			if err != nil {
				return nil, fmt.Errorf("ipvs: list destinations of %s: %w", s.Key, err)
			}
			s.Destinations = make([]Destination, 0, len(kds))
			for _, kd := range kds {
				s.Destinations = append(s.Destinations, fromKernelDestination(kd))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Apply performs ops in order. It goes on after a failed op, so one bad
// destination does not keep the rest of the table out, and returns every
// failure joined; the number of ops that succeeded is returned too. An add
// that finds the object already there (someone else added it since the diff)
// becomes an update; a delete that finds it gone counts as done. A Kernel
// that is also a Batcher gets the ops in batches.
func Apply(k Kernel, ops []Op) (int, error) {
	var errs []error
	done := 0
	var batched []error
	if b, ok := k.(Batcher); ok {
		batched = b.ApplyBatch(ops)
	}
	for i := range ops {
		var err error
		if batched != nil {
			err = settle(k, &ops[i], batched[i])
		} else {
			err = apply1(k, &ops[i])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("ipvs: %s: %w", ops[i], err))
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}

// settle turns the outcome of a batched op into apply1's semantics: a gone
// object on delete is success, an existing one on add is retried as update.
func settle(k Kernel, o *Op, err error) error {
	switch {
	case err == nil:
		return nil
	case o.Kind == DelService && errors.Is(err, unix.ESRCH),
		o.Kind == DelDestination && errors.Is(err, unix.ENOENT):
		return nil
	case o.Kind == AddService && errors.Is(err, unix.EEXIST):
		return k.UpdateService(kernelService(&o.Service))
	case o.Kind == AddDestination && errors.Is(err, unix.EEXIST):
		// Through the batch path again: moby/ipvs does not send a
		// tunnel's type, port and flags, and an update without them
		// would turn a GUE destination back into IPIP.
		if b, ok := k.(Batcher); ok {
			up := *o
			up.Kind = UpdateDestination
			return b.ApplyBatch([]Op{up})[0]
		}
		return k.UpdateDestination(kernelService(&o.Service), kernelDestination(&o.Dest))
	}
	return err
}

func apply1(k Kernel, o *Op) error {
	ks := kernelService(&o.Service)
	switch o.Kind {
	case DelService:
		return ignore(k.DelService(ks), unix.ESRCH)
	case AddService:
		err := k.NewService(ks)
		if errors.Is(err, unix.EEXIST) {
			err = k.UpdateService(ks)
		}
		return err
	case UpdateService:
		return k.UpdateService(ks)
	case DelDestination:
		return ignore(k.DelDestination(ks, kernelDestination(&o.Dest)), unix.ENOENT)
	case AddDestination:
		kd := kernelDestination(&o.Dest)
		err := k.NewDestination(ks, kd)
		if errors.Is(err, unix.EEXIST) {
			err = k.UpdateDestination(ks, kd)
		}
		return err
	case UpdateDestination:
		return k.UpdateDestination(ks, kernelDestination(&o.Dest))
	}
	return fmt.Errorf("unknown op kind %d", o.Kind)
}

func ignore(err error, errno unix.Errno) error {
	if errors.Is(err, errno) {
		return nil
	}
	return err
}
