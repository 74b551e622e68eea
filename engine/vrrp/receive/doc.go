// Package receive runs keepalived's receive checks on a VRRP advert, as a pure function of the packet and the instance.
//
// It sits apart from package vrrp because it reports engine/event drop
// reasons, and engine/event imports vrrp for its State and Family types.
package receive
