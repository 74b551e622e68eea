// Package track runs keepalived's trackers (vrrp_script, track_file, vrrp_track_process, track_interface) and turns their state into priority changes and faults.
package track
