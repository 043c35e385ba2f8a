// Package layout holds no code: its test checks the import rules of
// docs/architecture.md against the module's real import graph, so an
// arrow that points the wrong way fails CI instead of waiting for a
// reader to notice.
package layout
