// Package httpguard bounds what HTTP clients can make the agent spend: time per connection, concurrent expensive requests, and request size.
package httpguard
