package nskit_test

import (
	"fmt"
	"log"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// A three-node lab, as `keepwatch lab` builds it: start a process on a
// node, cut a node's link, add packet loss, then remove everything.
func Example() {
	// Remove labs left behind by crashed runs first.
	if _, err := nskit.Sweep(); err != nil {
		log.Print(err)
	}
	l, err := nskit.New(nskit.Options{Name: "demo", Nodes: 3})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close() // stops the processes, removes namespaces, veths and bridge

	n1 := l.Node(1)
	agent, err := n1.Start(n1.Command("keepalived", "-n", "-l", "-f", "/tmp/ka.conf"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n1.NS, n1.Link, n1.IPv4, n1.IPv6, n1.LinkLocal)
	_ = l.Node(2).Cut()     // carrier loss on node 2
	_ = l.Node(2).Restore() // and back
	_ = l.Node(3).Loss(20)  // drop 20% of node 3's IP packets
	_ = agent.Stop()        // SIGTERM, by pid
}
