// Package ipvs keeps the kernel's IPVS table equal to the virtual and real servers the config asks for, and reads its counters back.
package ipvs
