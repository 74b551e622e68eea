package configtest

// StockKeepalivedConf is the keepalived.conf that tutorials and
// distributions ship and most users start from (issue 8), with its
// interface written IFNAME (replace it with the test's) and its VIP moved to
// a documentation range (192.0.2.100). keepalived 2.2.7 runs it, reporting
// three errors it recovers from (vrrp_garp_interval 0, vrrp_gna_interval 0,
// authentication under vrrp_strict) [verified].
const StockKeepalivedConf = `global_defs {
   notification_email {
    root@mylinuxops.com
   }
   notification_email_from root@mylinuxops.com
   smtp_server 127.0.0.1
   smtp_connect_timeout 30
   router_id n1.mylinuxops.com
   vrrp_skip_check_adv_addr
   vrrp_strict
   vrrp_iptables
   vrrp_mcast_group4 224.0.0.18
   vrrp_garp_interval 0
   vrrp_gna_interval 0
}
vrrp_instance VI_1 {
    state BACKUP
    nopreempt
    interface IFNAME
    virtual_router_id 27
    priority 80
    advert_int 2
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.100 dev IFNAME label IFNAME:0
    }
}
`
