//go:build !unix

package cli

// openFileLimit reports that the open-file limit is unknown: the platform
// has no RLIMIT_NOFILE.
func openFileLimit() (uint64, bool) { return 0, false }
