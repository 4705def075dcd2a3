//go:build unix

package cli

import "syscall"

// openFileLimit returns the process's soft limit on open files, and false if
// it cannot be read. Go raises the soft limit to the hard limit at startup,
// so on Linux this is the hard limit (systemd's LimitNOFILE).
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}
