// Package push sends the agent's own VIP-move and fault alerts to Alertmanager at the moment of the transition.
package push
