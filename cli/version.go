package cli

import (
	"runtime"
	"runtime/debug"
)

// versionJSON is "llmgw version --json".
type versionJSON struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Commit   string `json:"commit,omitempty"`   // vcs.revision, when built from a checkout
	Modified bool   `json:"modified,omitempty"` // the checkout had uncommitted changes
}

func newVersionJSON(version string) versionJSON {
	v := versionJSON{Version: version, Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}
