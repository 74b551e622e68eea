// Package netif is the network side of VRRP on Linux: raw advert sockets, virtual addresses, routes and rules, gratuitous ARP and unsolicited NA, VMACs and link watch.
package netif
