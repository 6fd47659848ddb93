package pagecache

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCaps(t *testing.T) {
	c, err := ParseCaps("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n")
	if err != nil || !c.CanLoadBPF() || !c.Has(CapBPF) {
		t.Errorf("root caps: %x %v", c, err)
	}
	c, _ = ParseCaps("CapEff:\t000000c000000000\n") // CAP_BPF | CAP_PERFMON
	if !c.CanLoadBPF() || c.Has(CapSysAdmin) {
		t.Errorf("bpf+perfmon: %x", c)
	}
	c, _ = ParseCaps("CapEff:\t0000008000000000\n") // CAP_BPF alone
	if c.CanLoadBPF() {
		t.Error("CAP_BPF without CAP_PERFMON cannot read kernel memory")
	}
	if _, err := ParseCaps("CapEff:\tzz\n"); err == nil {
		t.Error("bad hex accepted")
	}
	if _, err := ParseCaps("Name: x\n"); err == nil {
		t.Error("missing CapEff accepted")
	}
}

func TestCheckBPF(t *testing.T) {
	root := Caps(1 << CapSysAdmin)
	missing := func(string) error { return os.ErrNotExist }
	present := func(string) error { return nil }
	if err := CheckBPF(0, "", present); !errors.Is(err, ErrNoPrivilege) {
		t.Errorf("no caps: %v", err)
	}
	if err := CheckBPF(root, "", missing); !errors.Is(err, ErrNoBTF) {
		t.Errorf("no BTF: %v", err)
	}
	if err := CheckBPF(root, "/x.btf", missing); err == nil || !strings.Contains(err.Error(), "--btf /x.btf") {
		t.Errorf("missing --btf file: %v", err)
	}
	if err := CheckBPF(root, "/x.btf", present); err != nil {
		t.Errorf("--btf present: %v", err)
	}
	if err := CheckBPF(root, "", present); err != nil {
		t.Errorf("all there: %v", err)
	}
}

func TestExplainLoad(t *testing.T) {
	verifier := []string{"libbpf: prog 'query_loop': BPF program load failed: Permission denied", "-- BEGIN PROG LOAD LOG --", "invalid access", "-- END PROG LOAD LOG --"}
	cases := []struct {
		err      error
		btf      string
		log      []string
		lockdown string
		want     string
	}{
		{fmt.Errorf("load: %w", unix.EACCES), "", verifier, "", "verifier rejected"},
		{fmt.Errorf("load: %w", unix.EPERM), "", nil, "none [integrity] confidentiality", "seccomp"},
		{fmt.Errorf("load: %w", unix.EPERM), "", nil, "none integrity [confidentiality]", "lockdown"},
		{fmt.Errorf("load: %w", unix.EIO), "/dev/null", []string{"libbpf: failed to parse target BTF: -5"}, "", "--btf /dev/null"},
		{errors.New("odd"), "", nil, "", "cannot load the BPF program: odd"},
		// A long log keeps only its tail: the END marker still says verifier.
		{fmt.Errorf("load: %w", unix.EINVAL), "/x.btf", []string{"172: <invalid CO-RE relocation>", "-- END PROG LOAD LOG --"}, "", "verifier rejected"},
	}
	for _, c := range cases {
		got := ExplainLoad(c.err, LoadContext{BTF: c.btf, Log: c.log, Lockdown: c.lockdown})
		if !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
			t.Errorf("ExplainLoad(%v) = %q, want one line containing %q", c.err, got, c.want)
		}
	}
	// Before 5.11 a small RLIMIT_MEMLOCK is the likely refusal, and named;
	// a large one is not blamed.
	small := &unix.Rlimit{Cur: 65536, Max: 65536}
	if got := ExplainLoad(fmt.Errorf("load: %w", unix.EPERM), LoadContext{Memlock: small}); !strings.Contains(got, "RLIMIT_MEMLOCK, which allows 65536 bytes") {
		t.Errorf("EPERM under a 64 KiB memlock limit before 5.11: %q", got)
	}
	big := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if got := ExplainLoad(fmt.Errorf("load: %w", unix.EPERM), LoadContext{Memlock: big}); !strings.Contains(got, "seccomp") {
		t.Errorf("EPERM with no memlock limit: %q", got)
	}
	tail := LogTail([]string{"a", "", "b", "c"}, 2)
	if strings.Join(tail, ",") != "b,c" {
		t.Errorf("LogTail = %v", tail)
	}
}
