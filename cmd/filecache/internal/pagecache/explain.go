package pagecache

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/filecache/filecache/bpf"
	"golang.org/x/sys/unix"
)

// Capability numbers (linux/capability.h).
const (
	CapSysAdmin = 21
	CapPerfmon  = 38
	CapBPF      = 39
)

// Caps is a set of effective capabilities.
type Caps uint64

func (c Caps) Has(n int) bool { return c&(1<<n) != 0 }

// CanLoadBPF says whether these capabilities let a process load and run a
// tracing-type program: CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN.
func (c Caps) CanLoadBPF() bool {
	return c.Has(CapSysAdmin) || c.Has(CapBPF) && c.Has(CapPerfmon)
}

// ParseCaps reads CapEff from the text of /proc/<pid>/status.
func ParseCaps(status string) (Caps, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapEff %q: %w", v, err)
			}
			return Caps(n), nil
		}
	}
	return 0, errors.New("no CapEff line")
}

// OwnCaps are this process's effective capabilities.
func OwnCaps() (Caps, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return ParseCaps(string(b))
}

// Errors that say what the bpf engine lacks, before anything is loaded.
var (
	ErrNoPrivilege = errors.New("the bpf engine needs root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8), which this process lacks: run it as root (sudo filecache ...)")
	ErrNoBTF       = errors.New("this kernel publishes no BTF at " + bpf.KernelBTF + " (built without CONFIG_DEBUG_INFO_BTF): pass --btf FILE with BTF for this exact kernel (for example from BTFHub)")
)

// CheckBPF says, before loading, what is missing for the bpf engine: the
// privileges, or kernel BTF when no --btf file is given.
func CheckBPF(caps Caps, btfPath string, stat func(string) error) error {
	if !caps.CanLoadBPF() {
		return ErrNoPrivilege
	}
	if btfPath != "" {
		if err := stat(btfPath); err != nil {
			return fmt.Errorf("--btf %s: %w", btfPath, err)
		}
		return nil
	}
	if err := stat(bpf.KernelBTF); err != nil {
		return ErrNoBTF
	}
	return nil
}

// LoadContext is what ExplainLoad weighs besides the error.
type LoadContext struct {
	BTF      string   // --btf
	Log      []string // what libbpf printed (the verifier's log)
	Lockdown string   // /sys/kernel/security/lockdown
	// Memlock, on kernels that charge BPF maps to RLIMIT_MEMLOCK (before
	// Linux 5.11), is the limit this process has; nil on newer kernels.
	Memlock *unix.Rlimit
}

// memlockEnough is RLIMIT_MEMLOCK that covers every map filecache makes
// (the walk's records are 4 MiB).
const memlockEnough = 16 << 20

// ExplainLoad turns a failed load into one line that says what went wrong
// and what to do.
func ExplainLoad(err error, c LoadContext) string {
	btfPath, log, lockdown := c.BTF, c.Log, c.Lockdown
	// libbpf frames the verifier's words with BEGIN and END PROG LOAD LOG
	// lines; a long log keeps only its tail, so either marker counts.
	all := strings.Join(log, "\n")
	switch {
	case btfPath != "" && (strings.Contains(all, "BTF") || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT)) &&
		!strings.Contains(all, "PROG LOAD LOG"):
		return fmt.Sprintf("cannot load the BPF program against --btf %s (%v): the file must be the BTF of this running kernel", btfPath, err)
	case errors.Is(err, unix.EPERM) && c.Memlock != nil && c.Memlock.Cur < memlockEnough:
		return fmt.Sprintf("the kernel refused to load the BPF program (%v): before Linux 5.11 BPF maps count against RLIMIT_MEMLOCK, which allows %d bytes here (hard limit %d); raise it (ulimit -l, systemd's LimitMEMLOCK=, prlimit --memlock) to %d or run with CAP_SYS_RESOURCE",
			err, c.Memlock.Cur, c.Memlock.Max, memlockEnough)
	case errors.Is(err, unix.EPERM):
		why := "a seccomp filter, an LSM or a container runtime forbids bpf(2)"
		if strings.Contains(lockdown, "[confidentiality]") {
			why = "kernel lockdown is in confidentiality mode, which forbids reading kernel memory"
		}
		return fmt.Sprintf("the kernel refused to load the BPF program (%v) although this process has the capabilities: %s", err, why)
	case strings.Contains(all, "PROG LOAD LOG"):
		return fmt.Sprintf("the kernel verifier rejected the BPF program (%v); run with -v for its log", err)
	}
	return fmt.Sprintf("cannot load the BPF program: %v", err)
}

// LogTail is the last n lines of a load log, blank lines dropped.
func LogTail(log []string, n int) []string {
	var out []string
	for _, l := range log {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
