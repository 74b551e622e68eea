// Package lab runs VRRP clusters of keepwatch agents (and the real keepalived) in network namespaces, for `keepwatch lab` and the network-tier tests.
package lab
