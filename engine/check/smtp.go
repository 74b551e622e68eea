package check

import (
	"context"
	"errors"
	"net/textproto"
	"time"
)

// ProbeSMTP is SMTP_CHECK: connect, read the 220 greeting, send
// `HELO helo_name`, expect 250, then QUIT (keepalived check_smtp.c; RFC 5321
// §4.3.2). Any other reply code is down with ReasonProtocol.
func ProbeSMTP(ctx context.Context, t *Target) Result {
	dl := deadline(ctx, t)
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	c, err := dial(dctx, "tcp", t)
	if err != nil {
		return failErr(dctx, err, ReasonConnect)
	}
	defer c.Close()
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetDeadline(dl)
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return smtpFail(dctx, err)
	}
	helo := t.HeloName
	if helo == "" {
		helo = DefaultHeloName
	}
	if err := tp.PrintfLine("HELO %s", helo); err != nil {
		return failErr(dctx, err, ReasonIO)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return smtpFail(dctx, err)
	}
	// The verdict is in; QUIT is courtesy and its answer does not count.
	if tp.PrintfLine("QUIT") == nil {
		_, _, _ = tp.ReadResponse(221)
	}
	return ok
}

// smtpFail classifies an SMTP read error: a wrong reply code or garbage is
// ReasonProtocol, the rest are network errors.
func smtpFail(ctx context.Context, err error) Result {
	var pe textproto.ProtocolError
	var te *textproto.Error
	if errors.As(err, &te) || errors.As(err, &pe) {
		return fail(ReasonProtocol, err)
	}
	return failErr(ctx, err, ReasonIO)
}
