package check

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/textproto"
	"time"
)

// maxSMTPReplies bounds the bytes ProbeSMTP reads from a server over the
// whole dialogue. RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets;
// a greeting, a HELO reply and a QUIT reply, each of a few continuation
// lines, fit many times over. A server that sends more (an endless
// greeting, a line without end) fails the probe at once rather than
// growing the agent's memory until the timeout.
const maxSMTPReplies = 16 << 10

// ErrReplyTooLong is the error of a checker whose server sent more than the
// checker reads.
var ErrReplyTooLong = errors.New("reply longer than the checker reads")

// ProbeSMTP is SMTP_CHECK: connect, read the 220 greeting, send
// `HELO helo_name`, expect 250, then QUIT (keepalived check_smtp.c; RFC 5321
// §4.3.2). Any other reply code is down with ReasonProtocol, as is a reply
// longer than maxSMTPReplies.
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
	helo := t.HeloName
	if helo == "" {
		helo = DefaultHeloName
	}
	return smtpDialogue(dctx, c, helo)
}

// smtpDialogue speaks SMTP_CHECK's part over rw: everything between the
// connect and the close, and all ProbeSMTP learns from the server's bytes.
func smtpDialogue(ctx context.Context, rw io.ReadWriter, helo string) Result {
	lr := &limitedReader{r: rw, n: maxSMTPReplies}
	tp := textproto.NewReader(bufio.NewReaderSize(lr, 1024))
	w := textproto.NewWriter(bufio.NewWriterSize(rw, 512))
	if _, _, err := tp.ReadResponse(220); err != nil {
		return smtpFail(ctx, err)
	}
	if err := w.PrintfLine("HELO %s", helo); err != nil {
		return failErr(ctx, err, ReasonIO)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return smtpFail(ctx, err)
	}
	// The verdict is in; QUIT is courtesy and its answer does not count.
	if w.PrintfLine("QUIT") == nil {
		_, _, _ = tp.ReadResponse(221)
	}
	return ok
}

// smtpFail classifies an SMTP read error: a wrong reply code, garbage or a
// reply too long is ReasonProtocol, the rest are network errors.
func smtpFail(ctx context.Context, err error) Result {
	var pe textproto.ProtocolError
	var te *textproto.Error
	if errors.As(err, &te) || errors.As(err, &pe) || errors.Is(err, ErrReplyTooLong) {
		return fail(ReasonProtocol, err)
	}
	return failErr(ctx, err, ReasonIO)
}

// limitedReader reads from r until n bytes have been read, then fails with
// ErrReplyTooLong (io.LimitReader's EOF would read as a server that closed).
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, ErrReplyTooLong
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
