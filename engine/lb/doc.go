// Package lb runs keepalived's load balancer side for the agent: the real-server health checks drive each virtual server's pool rules and the kernel's IPVS table.
package lb
