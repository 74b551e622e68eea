// Package notify runs keepalived's notify scripts, writes its notify FIFO lines and sends its SMTP alerts, behind a bounded queue.
package notify
