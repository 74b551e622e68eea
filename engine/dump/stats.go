package dump

import (
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Stats are keepalived's per-instance VRRP counters (vrrp_stats in
// keepalived/include/vrrp.h), under the names its JSON dump uses
// (vrrp_json.c) and in its order.
type Stats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"` // keepalived never counts it (02e1959a); always 0 there too
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthType   uint64 `json:"invalid_authtype"`
	AuthTypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
}

// Counters keeps Stats per instance name from the event stream. Like
// keepalived's, they survive a reload (vrrp.c copies them to the new
// instance) and are zeroed only by Clear (STATS_CLEAR).
type Counters struct {
	mu sync.Mutex
	m  map[string]*counter
}

type counter struct {
	Stats
	// lastSent is the time of the last advert counted: keepalived counts
	// one advert per send, not one per unicast peer, and the router emits
	// one event per destination, all with the same time.
	lastSent time.Time
}

// NewCounters returns empty counters; hand them every event (Emit).
func NewCounters() *Counters { return &Counters{m: map[string]*counter{}} }

var _ event.Sink = (*Counters)(nil)

// Emit counts e the way keepalived counts the same occurrence.
func (c *Counters) Emit(e event.Event) {
	if e.Instance == "" {
		return // unknown VRID: keepalived counts it nowhere
	}
	switch e.Kind {
	case event.KindAdvertSent, event.KindAdvertReceived, event.KindAdvertDropped, event.KindTransition:
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.m[e.Instance]
	if s == nil {
		s = &counter{}
		c.m[e.Instance] = s
	}
	switch e.Kind {
	case event.KindAdvertSent:
		if !s.lastSent.IsZero() && e.Time.Equal(s.lastSent) {
			return
		}
		s.lastSent = e.Time
		s.AdvertSent++
		if e.Priority == 0 {
			s.PriZeroSent++
		}
	case event.KindAdvertReceived:
		s.AdvertRcvd++
		if e.Priority == 0 {
			s.PriZeroRcvd++
		}
	case event.KindAdvertDropped:
		// keepalived's vrrp_check_packet() counters (reference §3.4).
		switch e.Reason {
		case event.DropLength:
			s.PacketLenErr++
		case event.DropTTL:
			s.IPTTLErr++
		case event.DropType:
			s.InvalidTypeRcvd++
		case event.DropAddressList, event.DropDestination:
			s.AddrListErr++
		case event.DropAuthType:
			// The router puts the auth type the advert carried in Value:
			// none of 0-2 is invalid_authtype, any other (or an AH
			// header present without auth_type AH, missing with it) is
			// authtype_mismatch (keepalived vrrp_check_packet).
			if e.Value > int64(vrrp.AuthAH) {
				s.InvalidAuthType++
			} else {
				s.AuthTypeMismatch++
			}
		case event.DropAuth:
			// A wrong PASS password, or an AH advert whose ICV, SPI or
			// sequence number fails.
			s.AuthFailure++
		}
	case event.KindTransition:
		if e.To == vrrp.StateMaster {
			s.BecomeMaster++
		}
		if e.From == vrrp.StateMaster && (e.To == vrrp.StateBackup || e.To == vrrp.StateFault) {
			s.ReleaseMaster++
		}
	}
}

// Get returns the instance's counters (zero if it has none yet).
func (c *Counters) Get(instance string) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.m[instance]; s != nil {
		return s.Stats
	}
	return Stats{}
}

// Clear zeroes every counter (keepalived's STATS_CLEAR signal).
func (c *Counters) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		s.Stats = Stats{}
	}
}
