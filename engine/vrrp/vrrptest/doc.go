// Package vrrptest provides VRRP test helpers: the captured keepalived vectors, and the advert bytes keepalived would send.
package vrrptest
