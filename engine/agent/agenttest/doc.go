// Package agenttest provides a fake agent.Platform that records what the agent asks of the operating system, for tests without root.
package agenttest
