// Package fsm implements the VRRP state machine of one instance, without clocks or I/O, as described in RFC 9568 §6.4 and RFC 3768 §6.4 with keepalived's deviations.
package fsm
