// Package smtptest runs a real SMTP server (emersion/go-smtp) in tests and keeps the mail it receives.
package smtptest
