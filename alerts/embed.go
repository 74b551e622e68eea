package alerts

import _ "embed" // the rule file and Alertmanager example, for keepwatch lab --observe

// Rules is keepwatch.rules.yml, the mixin's default rendering.
//
//go:embed keepwatch.rules.yml
var Rules []byte

// Alertmanager is alertmanager.yml, the mixin's Alertmanager example.
//
//go:embed alertmanager.yml
var Alertmanager []byte
