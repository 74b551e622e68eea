package kaconf

import (
	"errors"
	"fmt"
	"strings"
)

// maxLineLen is the longest line keepalived handles: lib/parser.h MAXBUF is
// 1024 and fgets() keeps one byte for the terminating NUL. keepalived 2.2.7
// reads a longer physical line as several lines of at most this many bytes
// (verified; later releases ignore such lines instead).
const maxLineLen = 1023

// whiteSpace is keepalived's WHITE_SPACE_STR, the word separators of
// alloc_strvec(). decomment() trims only blanks (space and tab).
const whiteSpace = " \t\f\n\r\v"

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isWhite(c byte) bool { return strings.IndexByte(whiteSpace, c) >= 0 }

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNameByte(c byte) bool { return isAlpha(c) || isDigit(c) || c == '_' }

// text is a line being preprocessed, with the source column of each byte, so
// that words keep their position through comment removal, conditional
// prefixes, substitution and brace splitting. Substituted bytes take the
// column of the '$' that produced them.
type text struct {
	s    string
	cols []int32
}

func newText(s string, col int) text {
	cols := make([]int32, len(s))
	for i := range cols {
		cols[i] = int32(col + i)
	}
	return text{s: s, cols: cols}
}

// constText is generated text (a multi-line definition's line) placed at col.
func constText(s string, col int) text {
	cols := make([]int32, len(s))
	for i := range cols {
		cols[i] = int32(col)
	}
	return text{s: s, cols: cols}
}

func (t text) slice(i, j int) text { return text{s: t.s[i:j], cols: t.cols[i:j]} }

// col returns the source column of byte i (the column after the end for
// i == len, 1 for an empty text).
func (t text) col(i int) int {
	switch {
	case i < len(t.cols):
		return int(t.cols[i])
	case len(t.cols) > 0:
		return int(t.cols[len(t.cols)-1]) + 1
	}
	return 1
}

func (t text) trimLeft() text {
	i := 0
	for i < len(t.s) && isBlank(t.s[i]) {
		i++
	}
	return t.slice(i, len(t.s))
}

func (t text) trimRight() text {
	j := len(t.s)
	for j > 0 && isBlank(t.s[j-1]) {
		j--
	}
	return t.slice(0, j)
}

// replace returns t with bytes [i, j) replaced by repl, placed at column col.
func (t text) replace(i, j int, repl string, col int) text {
	s := t.s[:i] + repl + t.s[j:]
	cols := make([]int32, 0, len(s))
	cols = append(cols, t.cols[:i]...)
	for range len(repl) {
		cols = append(cols, int32(col))
	}
	cols = append(cols, t.cols[j:]...)
	return text{s: s, cols: cols}
}

// chunk is what one fgets() call of keepalived returns: a physical line, or
// a 1023-byte piece of a longer one.
type chunk struct {
	line, col int
	b         []byte
	long      bool // a piece of a line longer than maxLineLen
}

// chunks splits a file into keepalived's read units (lib/parser.c
// read_line(): fgets into a MAXBUF buffer).
func chunks(data []byte, yield func(chunk) bool) {
	line := 1
	for len(data) > 0 {
		end := len(data)
		next := end
		if i := indexByte(data, '\n'); i >= 0 {
			end, next = i, i+1
		}
		phys := data[:end]
		long := len(phys) > maxLineLen
		col := 1
		for {
			n := min(len(phys), maxLineLen)
			// A piece of exactly maxLineLen bytes leaves the '\n' for the
			// next fgets(), which then reads an empty line: nothing to do.
			if !yield(chunk{line: line, col: col, b: phys[:n], long: long}) {
				return
			}
			phys = phys[n:]
			col += n
			if len(phys) == 0 {
				break
			}
		}
		data = data[next:]
		line++
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// decomment does what keepalived's decomment() does to a line read from a
// file: remove leading blanks, cut the line at the first '#' or '!' that is
// not inside double quotes (single quotes do not protect, reference §1.1),
// remove trailing blanks, and keep a final '\' (which only a multi-line
// $DEF= uses). '\#' and '\!' stay escaped; the tokenizer unescapes them.
// unterminated reports an unclosed double quote.
func decomment(t text) (out text, unterminated bool) {
	t = t.trimLeft()
	s := t.s
	quote, cont := false, false
	skip := -1
	end := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			if skip < 0 {
				quote = !quote
			}
		case '\\':
			if i+1 < len(s) {
				i++
				continue
			}
			// A final backslash continues a definition, even after a
			// comment: keepalived looks for it before cutting the comment.
			cont = true
			end = i
		case '#', '!':
			if !quote && skip < 0 {
				skip = i
			}
		}
	}
	if skip >= 0 && skip < end {
		end = skip
	}
	out = t.slice(0, end).trimRight()
	if cont {
		out.s += `\`
		out.cols = append(out.cols[:len(out.cols):len(out.cols)], int32(t.col(len(s)-1)))
	}
	return out, quote
}

// braceSplit finds the first '{' or '}' outside double quotes (keepalived's
// "line residue", reference §1.1). It returns the line to hand on and the
// residue to read next (empty if none).
func braceSplit(t text) (head, residue text) {
	s := t.s
	p := -1
	if len(s) > 0 && (s[0] == '{' || s[0] == '}') {
		p = 0
	} else {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '{' || c == '}' {
				p = i
				break
			}
			if c == '"' {
				j := strings.IndexByte(s[i+1:], '"')
				if j < 0 {
					break
				}
				i += j + 1
			}
		}
	}
	if p < 0 {
		return t.trimRight(), text{}
	}
	if p == 0 {
		return t.slice(0, 1), t.slice(1, len(s)).trimLeft().trimRight()
	}
	return t.slice(0, p).trimRight(), t.slice(p, len(s)).trimRight()
}

// errUnmatchedQuote is returned by tokenize for a '"' without its partner.
var errUnmatchedQuote = errors.New("unmatched quote")

// tokenize splits a preprocessed line into words as keepalived 2.2.7's
// alloc_strvec() does: words are separated by white space; a double-quoted
// string is one word without its quotes (pieces do not concatenate: a"b c"d
// is three words); single quotes are ordinary characters; an unquoted '#' or
// '!' ends the line (so ${_HASH} only survives inside double quotes, verified
// 2.2.7), and '\#' or '\!' is a literal '#' or '!'.
func tokenize(t text, words []Word) ([]Word, error) {
	s := t.s
	i := 0
	for {
		for i < len(s) && isWhite(s[i]) {
			i++
		}
		if i >= len(s) || s[i] == '#' || s[i] == '!' {
			return words, nil
		}
		start := i
		if s[i] == '"' {
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return words, errUnmatchedQuote
			}
			words = append(words, Word{Text: s[i+1 : i+1+j], Raw: s[i : i+2+j], Col: t.col(i), Quoted: true})
			i += j + 2
			continue
		}
		var b *strings.Builder
		stop := false
		for i < len(s) && !isWhite(s[i]) && s[i] != '"' {
			c := s[i]
			if c == '#' || c == '!' {
				stop = true
				break
			}
			if c == '\\' && i+1 < len(s) && (s[i+1] == '#' || s[i+1] == '!') {
				if b == nil {
					b = &strings.Builder{}
					b.WriteString(s[start:i])
				}
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
			if b != nil {
				b.WriteByte(c)
			}
			i++
		}
		w := Word{Text: s[start:i], Raw: s[start:i], Col: t.col(start)}
		if b != nil {
			w.Text = b.String()
		}
		if i > start {
			words = append(words, w)
		}
		if stop {
			return words, nil
		}
	}
}

// QuotedWords splits l.Text the way keepalived splits the arguments of its
// "quoted" keywords (notify*, script, misc_path, quorum_up/down,
// notify_up/down, startup/shutdown_script, *_fifo_script; reference §1.1,
// alloc_strvec_quoted_escaped()): both " and ' quote, quotes are removed and
// adjacent pieces concatenate (abcd" efg h "mnop is one word), and the C
// escapes \a \b \E \f \n \r \t \v \nnn \xXX \cC are processed everywhere; any
// other \C is C. Word.Col is approximate after substitution.
func (l Line) QuotedWords() ([]Word, error) {
	s := l.Text
	var words []Word
	var b strings.Builder
	base := l.Pos.Col
	if base == 0 {
		base = 1
	}
	i := 0
	for {
		for i < len(s) && isWhite(s[i]) {
			i++
		}
		if i >= len(s) {
			return words, nil
		}
		start := i
		quoted := false
		var quote byte
		b.Reset()
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s) {
					return words, fmt.Errorf("missing escape char at end: '%s'", s)
				}
				var n int
				var v byte
				v, n = unescape(s[i:])
				b.WriteByte(v)
				i += n
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				b.WriteByte(c)
				i++
			case c == '"' || c == '\'':
				quote, quoted = c, true
				i++
			case isWhite(c):
				break word
			default:
				b.WriteByte(c)
				i++
			}
		}
		if quote != 0 {
			return words, fmt.Errorf("string '%s': missing terminating %c", s, quote)
		}
		words = append(words, Word{Text: b.String(), Raw: s[start:i], Col: base + start, Quoted: quoted})
	}
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// unescape decodes the escape whose first byte (after the '\') starts s,
// returning the byte and how many bytes of s it used. Like keepalived, \x
// takes every following hex digit and keeps the low eight bits.
func unescape(s string) (byte, int) {
	c := s[0]
	switch {
	case c == 'x' && len(s) > 1 && isHex(s[1]):
		var v byte
		n := 1
		for n < len(s) && isHex(s[n]) {
			v = v<<4 | hexVal(s[n])
			n++
		}
		return v, n
	case c == 'c' && len(s) > 1:
		return s[1] & 0x1f, 2
	case c >= '0' && c <= '7':
		v := c - '0'
		n := 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v<<3 | (s[n] - '0')
			n++
		}
		return v, n
	}
	switch c {
	case 'a':
		return '\a', 1
	case 'b':
		return '\b', 1
	case 'E':
		return 0x1b, 1
	case 'f':
		return '\f', 1
	case 'n':
		return '\n', 1
	case 'r':
		return '\r', 1
	case 't':
		return '\t', 1
	case 'v':
		return '\v', 1
	}
	return c, 1
}
