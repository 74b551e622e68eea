// Package nskit builds throwaway network-namespace topologies (nodes on one bridge) for tests and for the keepwatch lab.
package nskit
