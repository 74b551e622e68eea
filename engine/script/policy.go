package script

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// DefaultUser is the user keepalived runs scripts as when neither the script
// nor global_defs' script_user names one (keepalived.conf(5) SCRIPTS).
const DefaultUser = "keepalived_script"

// ErrNoDefaultUser is returned by Policy.Resolve when no user is configured,
// DefaultUser does not exist and enable_script_security is set: keepalived
// then drops the script ("Unable to set default user keepalived_script for
// script", lib/notify.c get_default_script_user) rather than run it as root.
var ErrNoDefaultUser = errors.New("unable to set default user " + DefaultUser + " for script")

// Policy is global_defs' script settings: script_user [group] and
// enable_script_security. The zero value is keepalived's default.
type Policy struct {
	User, Group string // script_user; "" = DefaultUser, else this process's user
	Security    bool   // enable_script_security
}

// Identity is who a script runs as.
type Identity struct {
	User     string // the name it was resolved from ("" for this process's own user)
	UID, GID uint32
}

// Root reports whether the script runs with root's user or group, the case
// keepalived's script security is about (lib/notify.c check_script_secure).
func (id Identity) Root() bool { return id.UID == 0 || id.GID == 0 }

// Resolve returns who a script runs as, the way keepalived decides it: the
// script's own user [group] (`notify_master "/x" user group`), else
// script_user [group], else keepalived_script if that user exists, else this
// process's own user, except that with enable_script_security a missing
// keepalived_script is an error (lib/notify.c notify_script_init,
// get_default_script_user; verified against keepalived 2.2.7 -t, which
// removes such scripts).
func (p Policy) Resolve(own, group string) (Identity, error) {
	switch {
	case own != "":
		return lookup(own, group)
	case p.User != "":
		return lookup(p.User, p.Group)
	}
	id, err := lookup(DefaultUser, "")
	if err == nil {
		return id, nil
	}
	// Missing, or no user database at all (a minimal VM or container):
	// keepalived falls back the same way for both ("Unable to resolve
	// default script username - ignoring").
	if p.Security {
		return Identity{}, ErrNoDefaultUser
	}
	return Identity{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}, nil
}

func lookup(name, group string) (Identity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Identity{}, fmt.Errorf("script user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return Identity{}, fmt.Errorf("script user %q: uid %q: %w", name, u.Uid, err)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return Identity{}, fmt.Errorf("script group %q: %w", group, err)
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return Identity{}, fmt.Errorf("script group %q: gid %q: %w", group, gidStr, err)
	}
	return Identity{User: name, UID: uint32(uid), GID: uint32(gid)}, nil
}
