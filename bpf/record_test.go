package bpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A slot as the kernel wrote it (Linux 6.18, 16 MiB tmpfs file, inode 2 on
// device 0:27): 4096 pages, 16777216 bytes, tmpfs magic, mode 0100644, one link.
const tmpfsSlot = "0010000000000000" + "0000000100000000" + "0200000000000000" +
	"9419020100000000" + "1b000000" + "a4810000" + "00000000" + "01000000"

func TestDecodeResults(t *testing.T) {
	b := UnsetResults()
	slot, err := hex.DecodeString(tmpfsSlot)
	if err != nil || len(slot) != ResultSize {
		t.Fatalf("fixture: %v, %d bytes", err, len(slot))
	}
	copy(b, slot)
	got, err := DecodeResults(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{NrPages: 4096, Size: 16 << 20, Ino: 2, Magic: 0x01021994, Dev: 27, Mode: 0o100644, Status: StatusOK, Nlink: 1}
	if got[0] != want {
		t.Errorf("slot 0 = %+v, want %+v", got[0], want)
	}
	if got[1].Status != StatusUnset || got[1].NrPages != 0 {
		t.Errorf("slot 1 = %+v, want the unset marker", got[1])
	}
	if d := Dev(254<<20 | 3); unix.Major(d) != 254 || unix.Minor(d) != 3 {
		t.Errorf("kernel dev_t 254<<20|3 read as %d:%d", unix.Major(d), unix.Minor(d))
	}
	if d := Dev(259<<20 | 1<<19); unix.Major(d) != 259 || unix.Minor(d) != 1<<19 {
		t.Errorf("kernel dev_t 259<<20|2^19 read as %d:%d", unix.Major(d), unix.Minor(d))
	}
}

func TestDecodeResultsRejectsBadInput(t *testing.T) {
	if _, err := DecodeResults(make([]byte, ResultsSize-1), 1); err == nil {
		t.Error("short buffer accepted")
	}
	if _, err := DecodeResults(make([]byte, ResultsSize), Batch+1); err == nil {
		t.Error("more slots than a batch accepted")
	}
	if _, err := DecodeResults(make([]byte, ResultsSize), -1); err == nil {
		t.Error("negative count accepted")
	}
}

func TestEncodeParams(t *testing.T) {
	b, err := Params{FDs: []int32{3, 1000, -1}, Start: 64, TID: 0x1234, Trigger: 110}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != ParamsSize {
		t.Fatalf("%d bytes, want %d", len(b), ParamsSize)
	}
	if h := hex.EncodeToString(b[:12]); h != "03000000e8030000ffffffff" {
		t.Errorf("fds = %s", h)
	}
	if h := hex.EncodeToString(b[Batch*4:]); h != "03000000"+"40000000"+"34120000"+"6e000000" {
		t.Errorf("count, start, tid, trigger = %s", h)
	}
	if _, err := (Params{FDs: make([]int32, Batch+1)}).Encode(); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized batch: %v", err)
	}
}

// TestStatusString: every status filecache.h defines has a text of its
// own, so an error says which; any other value is said with its number.
func TestStatusString(t *testing.T) {
	testStatusTexts(t, "fc_result.status", func(v uint32) string { return Status(v).String() })
}

// testStatusTexts checks the texts of the status values filecache.h defines
// after the comment /* field */.
func testStatusTexts(t *testing.T, field string, text func(uint32) string) {
	t.Helper()
	defs := headerDefines(t, field)
	if len(defs) < 2 {
		t.Fatalf("filecache.h: %d values after /* %s */", len(defs), field)
	}
	seen := map[string]string{}
	unused := uint32(0)
	for name, v := range defs {
		s := text(v)
		if s == "" || strings.Contains(s, "unknown") {
			t.Errorf("%s (%d) reads %q", name, v, s)
		}
		if other, ok := seen[s]; ok {
			t.Errorf("%s and %s both read %q", name, other, s)
		}
		seen[s] = name
		if v != 0xffffffff && v >= unused {
			unused = v + 1
		}
	}
	if s := text(unused); !strings.Contains(s, "unknown") || !strings.Contains(s, strconv.FormatUint(uint64(unused), 10)) {
		t.Errorf("%d, which filecache.h does not define, reads %q", unused, s)
	}
}

// headerDefines reads the #defines that follow the comment /* field */ in
// filecache.h, the header the BPF program is compiled with.
func headerDefines(t *testing.T, field string) map[string]uint32 {
	t.Helper()
	h, err := os.ReadFile("filecache.h")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(h), "/* "+field+" */\n")
	if !ok {
		t.Fatalf("filecache.h has no /* %s */", field)
	}
	defs := map[string]uint32{}
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "#define" {
			break
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(f[2], "u"), 0, 32)
		if err != nil {
			t.Fatalf("filecache.h: %s: %v", line, err)
		}
		defs[f[1]] = uint32(v)
	}
	return defs
}

// FuzzDecodeResults: any bytes either decode or fail cleanly, and a decoded
// slot re-encodes to the very bytes it came from.
func FuzzDecodeResults(f *testing.F) {
	slot, _ := hex.DecodeString(tmpfsSlot)
	f.Add(slot, 1)
	f.Add(UnsetResults()[:ResultSize], 1)
	f.Fuzz(func(t *testing.T, head []byte, n int) {
		b := make([]byte, ResultsSize)
		copy(b, head)
		got, err := DecodeResults(b, n)
		if n < 0 || n > Batch {
			if err == nil {
				t.Fatalf("count %d accepted", n)
			}
			return
		}
		if err != nil || len(got) != n {
			t.Fatalf("%d slots: %v, %d results", n, err, len(got))
		}
		if n > 0 {
			r := got[0]
			re := make([]byte, ResultSize)
			le := binary.LittleEndian
			le.PutUint64(re[0:], r.NrPages)
			le.PutUint64(re[8:], r.Size)
			le.PutUint64(re[16:], r.Ino)
			le.PutUint64(re[24:], r.Magic)
			le.PutUint32(re[32:], r.Dev)
			le.PutUint32(re[36:], r.Mode)
			le.PutUint32(re[40:], uint32(r.Status))
			le.PutUint32(re[44:], r.Nlink)
			if !bytes.Equal(re, b[:ResultSize]) {
				t.Fatalf("slot 0 does not round-trip:\n%x\n%x", re, b[:ResultSize])
			}
		}
	})
}
