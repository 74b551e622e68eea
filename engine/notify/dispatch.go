package notify

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/keepwatch/keepwatch/engine/boundq"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/script"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// job is one script run, queued on its instance's, group's or virtual
// server's lane.
type job struct {
	spec     script.Spec
	instance string
	service  string
	target   string
	cause    uint64
}

// ReasonInsecure is the Reason of a KindNotifyRun refused by
// enable_script_security.
const ReasonInsecure event.Reason = script.ReasonInsecure

func (d *dispatcher) handle(it item) {
	p := d.n.plan.Load()
	switch it.e.Kind {
	case event.KindTransition:
		d.transition(p, it.group, &it.e)
	case event.KindRealServer:
		d.realServer(p, &it.e)
	case event.KindQuorum:
		d.quorum(p, &it.e)
	case event.KindPriorityChanged:
		d.priority(p, &it.e)
	case event.KindMasterRxLowerPri:
		d.lowerPri(p, &it.e)
	case event.KindChecker:
		d.checker(p, &it.e)
	}
}

// checker mails a checker's change that left its real server as it was,
// unless no_checker_emails: keepalived's check_*.c epilogs call
// smtp_alert(SMTP_MSG_RS) when a checker flips and either the server's
// state changed (realServer's mail) or no_checker_emails is off. The
// subject gives the server's state, the body the checker's. No script and
// no FIFO line: those follow the server only.
func (d *dispatcher) checker(p *plan, e *event.Event) {
	if p.noCheckerEmails || p.mail == nil {
		return
	}
	svc := p.services[e.Service]
	if svc == nil {
		return
	}
	srv := svc.servers[e.Target]
	if srv == nil || !srv.mail {
		return
	}
	d.mail(message{mc: p.mail, cause: e.ID,
		subject: rsSubject(p.mail.routerID, srv.display, svc.display, e.Value != 0),
		body:    rsBody(e.Name, e.OK)})
}

// lowerPri follows vrrp_notify.c send_event_notify: a master that hears a
// lower priority runs notify_master_rx_lower_pri with its own arguments
// only (not the generic notify script) and writes `INSTANCE "VI_1"
// MASTER_RX_LOWER_PRI 100` (its own effective priority) to the VRRP FIFOs.
// No mail is sent for it.
func (d *dispatcher) lowerPri(p *plan, e *event.Event) {
	if t := p.instances[e.Instance]; t != nil && t.notify.MasterRxLowerPri != nil {
		d.run(p, "i:"+e.Instance, t.notify.MasterRxLowerPri, false, job{instance: e.Instance, cause: e.ID})
	}
	line := vrrpLine(false, e.Instance, "MASTER_RX_LOWER_PRI", e.Priority)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoVRRP, line)
}

// transition follows vrrp_notify.c send_instance_notifies and
// send_group_notifies: notify_<state> with its own argv, then `notify`
// with INSTANCE|GROUP, the name, the state and the priority (0 for a
// group) appended, then the FIFO line, then the mail.
func (d *dispatcher) transition(p *plan, group bool, e *event.Event) {
	state := stateWord(e.To)
	if state == "" {
		return
	}
	name, prio, typ, key := e.Instance, e.Priority, "INSTANCE", "i:"+e.Instance
	t := p.instances[name]
	if !group && t == nil && e.To == vrrp.StateStop && p.deleted[name] != nil {
		d.deleted(p, p.deleted[name], e)
		return
	}
	if group {
		name, prio, typ, key = e.Name, 0, "GROUP", "g:"+e.Name
		t = p.groups[name]
	}
	if !group {
		d.insts[name] = instState{state: e.To, prio: prio}
	}
	if t != nil {
		var s *config.Script
		switch e.To {
		case vrrp.StateMaster:
			s = t.notify.Master
		case vrrp.StateBackup:
			s = t.notify.Backup
		case vrrp.StateFault:
			s = t.notify.Fault
		case vrrp.StateStop:
			s = t.notify.Stop
		}
		stop := e.To == vrrp.StateStop
		if s != nil {
			d.run(p, key, s, stop, job{instance: name, cause: e.ID})
		}
		if t.notify.Any != nil {
			d.run(p, key, t.notify.Any, stop, job{instance: name, cause: e.ID},
				typ, name, state, strconv.Itoa(prio))
		}
	}
	line := vrrpLine(group, name, state, prio)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoVRRP, line)

	if t == nil || !t.mail || p.mail == nil || (p.noEmailFaults && e.To == vrrp.StateFault) ||
		d.lastMail[key] == e.To {
		return
	}
	d.lastMail[key] = e.To
	m := message{mc: p.mail, cause: e.ID}
	if group {
		m.subject, m.body = groupSubject(p.mail.routerID, name, e.To), groupBody(e.To)
	} else {
		m.subject, m.body = instanceSubject(p.mail.routerID, name, e.To), instanceBody(e.To)
	}
	d.mail(m)
}

// deleted announces an instance a reload removed, as keepalived 2.2.7 does
// (tried in a namespace, vrrp_notify.c): with notify_deleted its script,
// if it names one, runs with no arguments and `notify` and the FIFOs get
// DELETED; without it they get FAULT, and neither notify_fault nor
// notify_stop runs. No mail is sent for it.
func (d *dispatcher) deleted(p *plan, t *target, e *event.Event) {
	name, key := e.Instance, "i:"+e.Instance
	delete(d.insts, name)
	state := "FAULT"
	if s := t.notify.Deleted; s != nil {
		state = "DELETED"
		if s.Command != "" || len(s.Args) > 0 {
			d.run(p, key, s, true, job{instance: name, cause: e.ID})
		}
	}
	if t.notify.Any != nil {
		d.run(p, key, t.notify.Any, true, job{instance: name, cause: e.ID},
			"INSTANCE", name, state, strconv.Itoa(e.Priority))
	}
	line := vrrpLine(false, name, state, e.Priority)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoVRRP, line)
}

// priority writes an instance's new effective priority to the VRRP FIFOs
// when it has notify_priority_changes: `INSTANCE "VI_1" BACKUP_PRIORITY
// 105`, the state it is in with _PRIORITY appended (keepalived.conf(5)
// "MASTER_PRIORITY" and "BACKUP_PRIORITY"; keepalived 2.2.7, tried with a
// track_file moving the priority, writes `INSTANCE "VI_1" BACKUP_PRIORITY
// 105` then, once master, `INSTANCE "VI_1" MASTER_PRIORITY 97`). Nothing
// is written before the instance's first transition (its start-up
// priority comes with that transition's line), outside MASTER and BACKUP,
// or when the priority is the one last written.
func (d *dispatcher) priority(p *plan, e *event.Event) {
	t := p.instances[e.Instance]
	cur, ok := d.insts[e.Instance]
	if t == nil || !t.prio || !ok || cur.prio == e.Priority {
		return
	}
	if cur.state != vrrp.StateMaster && cur.state != vrrp.StateBackup {
		return
	}
	d.insts[e.Instance] = instState{state: cur.state, prio: e.Priority}
	line := vrrpLine(false, e.Instance, stateWord(cur.state)+"_PRIORITY", e.Priority)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoVRRP, line)
}

// realServer follows ipwrapper.c do_rs_notifies: notify_up/notify_down,
// the FIFO line, and the mail keepalived's checker sends. Only changes of
// state count: weight changes re-emit the same state. The startup state
// is announced only with rs_init_notifies, and only for a server that is
// up, without mail, as keepalived's init_service_rs does.
func (d *dispatcher) realServer(p *plan, e *event.Event) {
	svc := p.services[e.Service]
	if svc == nil {
		return
	}
	srv := svc.servers[e.Target]
	if srv == nil {
		return
	}
	key := "r:" + e.Service + " " + e.Target
	prev, seen := d.lastUp[key]
	d.lastUp[key] = e.OK
	startup := e.Reason == event.ReasonStartup
	switch {
	case startup && !(p.rsInit && e.OK):
		return
	case !startup && seen && prev == e.OK:
		return
	}
	s := srv.rs.NotifyDown
	if e.OK {
		s = srv.rs.NotifyUp
	}
	if s != nil {
		d.run(p, "s:"+e.Service, s, false, job{service: e.Service, target: e.Target, cause: e.ID})
	}
	line := rsLine(srv.display, svc.display, e.OK)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoLVS, line)
	if !startup && srv.mail && p.mail != nil {
		d.mail(message{mc: p.mail, cause: e.ID,
			subject: rsSubject(p.mail.routerID, srv.display, svc.display, e.OK),
			body:    rsBody(e.Name, e.OK)})
	}
}

// quorum follows ipwrapper.c do_vs_notifies: quorum_up/quorum_down, the
// FIFO line and the mail. Value carries the live weight for the mail text.
// At startup keepalived announces only a quorum that starts down with a
// sorry server to put in.
func (d *dispatcher) quorum(p *plan, e *event.Event) {
	svc := p.services[e.Service]
	if svc == nil {
		return
	}
	key := "q:" + e.Service
	prev, seen := d.lastUp[key]
	d.lastUp[key] = e.OK
	startup := e.Reason == event.ReasonStartup
	switch {
	case startup && (e.OK || svc.vs.SorryServer == nil):
		return
	case !startup && seen && prev == e.OK:
		return
	}
	s := svc.vs.QuorumDown
	if e.OK {
		s = svc.vs.QuorumUp
	}
	if s != nil {
		d.run(p, "s:"+e.Service, s, false, job{service: e.Service, cause: e.ID})
	}
	line := vsLine(svc.display, e.OK)
	d.writeFIFO(fifoAll, line)
	d.writeFIFO(fifoLVS, line)
	if svc.mail && p.mail != nil {
		q := svc.vs.Quorum
		if q == 0 {
			q = config.DefaultQuorum
		}
		d.mail(message{mc: p.mail, cause: e.ID,
			subject: vsSubject(p.mail.routerID, svc.display, e.OK),
			body:    vsBody(startup, e.OK, q, svc.vs.Hysteresis, int(e.Value))})
	}
}

// argv is a configured script's argument vector plus extra arguments.
func argv(s *config.Script, extra ...string) []string {
	a := s.Args
	if len(a) == 0 {
		a = config.SplitCommand(s.Command)
	}
	return append(slices.Clip(a), extra...)
}

// run queues s on lane key. The script's own user wins, else script_user.
func (d *dispatcher) run(p *plan, key string, s *config.Script, stop bool, j job, extra ...string) {
	j.spec = script.Spec{Argv: argv(s, extra...), User: s.User, Group: s.Group, Policy: p.scripts, Timeout: d.n.opts.ScriptTimeout}
	if stop {
		j.spec.Timeout = d.n.opts.StopTimeout
	}
	l, ok := d.lanes[key]
	if !ok {
		l = boundq.New[job](d.n.opts.LaneSize)
		d.lanes[key] = l
		d.wg.Add(1)
		go d.lane(l)
	}
	if !l.Push(j) {
		d.n.dropped.Add(1)
		d.n.log.Warn("notify: script queue full, dropping", "lane", key, "script", j.spec.Argv[0])
	}
}

// lane runs one key's scripts in order.
func (d *dispatcher) lane(l *boundq.Queue[job]) {
	defer d.wg.Done()
	for {
		for j, ok := l.Pop(); ok; j, ok = l.Pop() {
			r, class := d.n.runJob(d.work, j)
			d.n.report(j, r, class)
		}
		select {
		case <-l.Ready():
		case <-d.lanesDone:
			// Run queues nothing more once it has closed lanesDone:
			// what is held now is the last of it.
			for j, ok := l.Pop(); ok; j, ok = l.Pop() {
				r, class := d.n.runJob(d.work, j)
				d.n.report(j, r, class)
			}
			return
		}
	}
}

// runJob runs j (script.Run refuses it under enable_script_security when it
// is unsafe) and returns the result and its error class.
func (n *Notifier) runJob(ctx context.Context, j job) (script.Result, string) {
	r := script.Run(ctx, j.spec)
	if r.Refused {
		n.log.Warn("notify: not running script", "script", firstArg(j.spec.Argv), "err", r.Err)
	}
	return r, r.Class()
}

func firstArg(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	return argv[0]
}

func (n *Notifier) report(j job, r script.Result, class string) {
	name := ""
	if len(j.spec.Argv) > 0 {
		name = j.spec.Argv[0]
	}
	n.sink.Emit(event.Event{Kind: event.KindNotifyRun, ID: event.NewID(), Cause: j.cause, Time: time.Now(),
		Name: name, Instance: j.instance, Service: j.service, Target: j.target,
		OK: class == "", ExitCode: r.ExitCode, Duration: r.Duration, Reason: event.Reason(class), Err: r.Err})
}

func (d *dispatcher) writeFIFO(i int, line []byte) {
	ff := d.fifos.f[i]
	if ff == nil {
		return
	}
	if err := ff.write(line); err != nil {
		d.n.fifoErr.Add(1)
		d.n.log.Debug("notify: fifo write failed", "fifo", ff.path, "err", err)
	}
}

func (d *dispatcher) mail(m message) {
	select {
	case d.mailq <- m:
	default:
		d.n.dropped.Add(1)
		d.n.log.Warn("notify: mail queue full, dropping", "subject", m.subject)
	}
}

// mailLoop sends queued mails one at a time; a failed mail is retried
// once after MailRetryDelay, then reported failed.
func (d *dispatcher) mailLoop() {
	defer d.wg.Done()
	for m := range d.mailq {
		start := time.Now()
		err := send(d.work, m.mc, m, d.n.opts.Now())
		attempts := 1
		if err != nil && d.work.Err() == nil {
			t := time.NewTimer(d.n.opts.MailRetryDelay)
			select {
			case <-t.C:
				attempts++
				err = send(d.work, m.mc, m, d.n.opts.Now())
			case <-d.work.Done():
			}
			t.Stop()
		}
		e := event.Event{Kind: event.KindMailSent, ID: event.NewID(), Cause: m.cause, Time: time.Now(),
			Name: m.subject, OK: err == nil, Duration: time.Since(start), Value: int64(attempts), Err: err}
		if err != nil {
			e.Reason = event.Reason(classOf(err))
			d.n.log.Warn("notify: mail failed", "subject", m.subject, "server", m.mc.server,
				"attempts", attempts, "err", err)
		}
		d.n.sink.Emit(e)
	}
}

// openFIFOs opens the configured FIFOs; one that cannot be opened is
// logged and left out, as keepalived does.
func (n *Notifier) openFIFOs(p *plan) *fifoSet {
	fs := &fifoSet{}
	ctx, cancel := context.WithCancel(context.Background())
	fs.cancel = cancel
	for i, fc := range p.fifos {
		if fc == nil || fc.Path == "" {
			continue
		}
		ff, err := openFIFO(fc)
		if err != nil {
			n.log.Error("notify: cannot open fifo", "fifo", fc.Path, "err", err)
			continue
		}
		fs.f[i] = ff
		if fc.Script != nil {
			j := job{spec: script.Spec{Argv: argv(fc.Script, fc.Path), User: fc.Script.User, Group: fc.Script.Group, Policy: p.scripts}}
			fs.scripts.Add(1)
			go func() {
				defer fs.scripts.Done()
				// A reader is meant to run until shutdown; report it only
				// if it ends before that.
				r, class := n.runJob(ctx, j)
				if ctx.Err() == nil {
					n.report(j, r, class)
					n.log.Warn("notify: fifo script exited", "script", j.spec.Argv[0], "exit_code", r.ExitCode, "err", r.Err)
				}
			}()
		}
	}
	return fs
}
