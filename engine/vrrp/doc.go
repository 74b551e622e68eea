// Package vrrp implements VRRP advertisements, as described in RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2).
package vrrp
