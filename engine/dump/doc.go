// Package dump writes keepalived 2.2.7's signal dumps (keepalived.data, keepalived.stats and keepalived.json) from keepwatch's running state, in keepalived's formats and field names, secrets masked.
package dump
