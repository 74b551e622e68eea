// Package check implements keepalived's real-server health checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, FILE_CHECK) and the scheduler that runs them.
package check
