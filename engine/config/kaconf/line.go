package kaconf

import "github.com/keepwatch/keepwatch/engine/config"

// Word is one whitespace-separated token of a logical line, after comment
// removal, definition substitution and generator expansion.
type Word struct {
	// Text is the word with quotes removed (and, for quoted keywords, escapes
	// processed: see Raw).
	Text string
	// Raw is the word as written (quotes kept), for keywords that take a
	// script specification and split it themselves.
	Raw string
	// Col is the 1-based column of the word in its source line.
	Col int
	// Quoted reports whether any part of the word was quoted.
	Quoted bool
}

// Line is one logical line handed to the parser. The reader has already split
// it at unquoted '{' and '}' (reference §1.1: "line residue"), so a brace is
// always a Line of its own with a single Word "{" or "}".
type Line struct {
	Pos   config.Pos // file and line of origin (the included file, not the includer)
	Words []Word
	// Text is the whole logical line after preprocessing, for keywords that
	// take the rest of the line verbatim.
	Text string
}

// Keyword returns the first word's text, or "" for an empty line.
func (l Line) Keyword() string {
	if len(l.Words) == 0 {
		return ""
	}
	return l.Words[0].Text
}
