// Package kaconf reads keepalived.conf: keepalived's lexical rules, preprocessor, keyword tables and printer.
package kaconf
