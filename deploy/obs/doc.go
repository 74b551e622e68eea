// Package obs holds the observability end-to-end tests: real keepwatch agents in network namespaces, scraped, traced and logged while VRRP scenarios run.
package obs
