package cli

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "../deploy/llmgw.service"

// unitDirectives returns the active (uncommented) directives of a unit
// file as key → values, in order.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string)
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", path, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

func TestServeUnit_Hardened(t *testing.T) {
	t.Parallel()
	got := unitDirectives(t, unitFile)
	for _, want := range []struct{ key, val string }{
		{"NoNewPrivileges", "true"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"PrivateUsers", "true"},
		{"PrivateDevices", "true"},
		{"PrivateTmp", "true"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "true"},
		{"ProtectClock", "true"},
		{"ProtectHostname", "true"},
		{"ProtectKernelTunables", "true"},
		{"ProtectKernelModules", "true"},
		{"ProtectKernelLogs", "true"},
		{"ProtectControlGroups", "true"},
		{"ProtectProc", "invisible"},
		{"ProcSubset", "pid"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"RestrictNamespaces", "true"},
		{"RestrictRealtime", "true"},
		{"RestrictSUIDSGID", "true"},
		{"RemoveIPC", "true"},
		{"SystemCallArchitectures", "native"},
		{"SystemCallFilter", "@system-service"},
		{"SystemCallFilter", "~@privileged @resources"},
		{"UMask", "0077"},
		{"StateDirectory", "llmgw"},
		{"LogsDirectory", "llmgw"},
		{"LimitNOFILE", "65536"},
		{"TimeoutStopSec", "660"},
		{"ExecStartPre", "/usr/local/bin/llmgw db migrate"},
		{"ExecStart", "/usr/local/bin/llmgw serve"},
	} {
		found := false
		for _, v := range got[want.key] {
			found = found || v == want.val
		}
		if !found {
			t.Errorf("%s: no %s=%s (have %q)", unitFile, want.key, want.val, got[want.key])
		}
	}
	// llmgw must reach Anthropic, wherever its addresses are.
	if v, ok := got["IPAddressDeny"]; ok {
		t.Errorf("%s: IPAddressDeny=%q would cut llmgw off from the upstream", unitFile, v)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#Environment=LLMGW_LISTEN=0.0.0.0:8080",
		"#LoadCredential=llmgw-secret-key:/etc/llmgw/secret-key",
		"#Environment=LLMGW_LOG_FILE=/var/log/llmgw/llmgw.log",
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("%s does not document %q", unitFile, want)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestServeUnit_Exposure rates the unit with systemd-analyze, where it is
// installed and knows --offline (systemd 250 and later).
func TestServeUnit_Exposure(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command(bin, "security", "--offline=yes", unitFile).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Skipf("systemd-analyze security --offline=yes gave no rating (%v):\n%s", err, out)
	}
	got, perr := strconv.ParseFloat(string(m[1]), 64)
	if perr != nil {
		t.Fatalf("exposure %q: %v", m[1], perr)
	}
	const want = 2.0
	if got > want {
		t.Errorf("exposure = %.1f, want at most %.1f:\n%s", got, want, out)
	}
}
