package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Lines as the kernel writes them (fs/proc_namespace.c, show_mountinfo):
// single spaces between fields, any number of optional fields before the
// " - " separator, the source as given to mount(2) (possibly empty),
// space, tab, newline and backslash escaped as octal in paths and source.
func TestParseKernelLines(t *testing.T) {
	for _, c := range []struct {
		name, line string
		want       Mount
	}{
		{"proc(5)'s example", `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`,
			Mount{Dev: unix.Mkdev(98, 0), Root: "/mnt1", Point: "/mnt2", FSType: "ext3", Source: "/dev/root", Super: `rw,errors=continue`}},
		{"empty source", `612 25 0:60 / /tmp/x rw,relatime shared:300 - tmpfs  rw,size=1024k`,
			Mount{Dev: unix.Mkdev(0, 60), Root: "/", Point: "/tmp/x", FSType: "tmpfs", Source: "", Super: `rw,size=1024k`}},
		{"empty source, no optional field", `613 25 0:61 / /tmp/y rw,relatime - tmpfs  rw,size=1024k,mode=755`,
			Mount{Dev: unix.Mkdev(0, 61), Root: "/", Point: "/tmp/y", FSType: "tmpfs", Source: "", Super: `rw,size=1024k,mode=755`}},
		{"source is a dash", `614 25 0:62 / /tmp/z rw - tmpfs - rw`,
			Mount{Dev: unix.Mkdev(0, 62), Root: "/", Point: "/tmp/z", FSType: "tmpfs", Source: "-", Super: `rw`}},
		{"every optional field", `90 22 0:44 / /srv rw shared:5 master:3 propagate_from:2 unbindable - xfs /dev/sdb1 rw,attr2`,
			Mount{Dev: unix.Mkdev(0, 44), Root: "/", Point: "/srv", FSType: "xfs", Source: "/dev/sdb1", Super: `rw,attr2`}},
		{"escapes", `91 22 8:17 /with\040space /mnt/a\040b\011c\012d\134e rw - cifs //srv/My\040Docs rw,vers=3.1.1`,
			Mount{Dev: unix.Mkdev(8, 17), Root: "/with space", Point: "/mnt/a b\tc\nd\\e", FSType: "cifs", Source: "//srv/My Docs", Super: `rw,vers=3.1.1`}},
		{"subtype", `92 22 0:50 / /home/u/remote rw,nosuid,nodev - fuse.sshfs u@host:/ rw,user_id=0,group_id=0`,
			Mount{Dev: unix.Mkdev(0, 50), Root: "/", Point: "/home/u/remote", FSType: "fuse.sshfs", Source: "u@host:/", Super: `rw,user_id=0,group_id=0`}},
		{"large device numbers", `93 22 259:1048575 / /data rw - ext4 /dev/nvme0n1p1 rw`,
			Mount{Dev: unix.Mkdev(259, 1048575), Root: "/", Point: "/data", FSType: "ext4", Source: "/dev/nvme0n1p1", Super: `rw`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms, err := Parse(strings.NewReader(c.line + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0] != c.want {
				t.Errorf("%q\nparsed %+v\nwant   %+v", c.line, ms, []Mount{c.want})
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, line := range []string{
		`1 2 x:y / / rw - ext4 a b`,        // device
		`1 2 8:1 / / rw ext4 /dev/sda1 rw`, // no separator
		`1 2 8:1 / / rw -`,                 // nothing after it
		`1 2 8:1 / / rw - ext4`,            // no source
		`1 2 8:1 /`,                        // cut short
		``,                                 // empty line
	} {
		if ms, err := Parse(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("%q accepted: %+v", line, ms)
		}
	}
}

// The running kernel's own table: one Mount per line, each device the one
// the kernel gives, every mount point absolute.
func TestParseSelf(t *testing.T) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mountinfo here: %v", err)
	}
	ms, err := Parse(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	i := 0
	for ; sc.Scan(); i++ {
		f := strings.Split(sc.Text(), " ")
		if i >= len(ms) {
			t.Fatalf("%d mounts for more lines", len(ms))
		}
		m := ms[i]
		if dev := f[2]; dev != fmt.Sprintf("%d:%d", unix.Major(m.Dev), unix.Minor(m.Dev)) {
			t.Errorf("line %d: device %s parsed as %d:%d", i+1, dev, unix.Major(m.Dev), unix.Minor(m.Dev))
		}
		if !strings.HasPrefix(m.Point, "/") || !strings.HasPrefix(m.Root, "/") || m.FSType == "" {
			t.Errorf("line %d %q: %+v", i+1, sc.Text(), m)
		}
	}
	if i != len(ms) {
		t.Errorf("%d lines, %d mounts", i, len(ms))
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:         "/plain",
		`/a\040b`:        "/a b",
		`/tab\011nl\012`: "/tab\tnl\n",
		`/back\134slash`: `/back\slash`,
		`/short\04`:      `/short\04`,
		`/not\999`:       `/not\999`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
