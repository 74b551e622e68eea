// Package config is keepwatch's typed configuration model: defaults, validation and the YAML/TOML/JSON front end.
package config
