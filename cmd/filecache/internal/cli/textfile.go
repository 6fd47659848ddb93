package cli

import (
	"fmt"
	"os"
	"path/filepath"
)

// replaceFile puts data at path whole or not at all: it is written to a
// temporary file beside path (a hidden name, which node_exporter's textfile
// collector, reading *.prom, never picks up), then renamed over path, so a
// reader sees the old contents or the new, never part of them.
func replaceFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	// Readable by a collector running as another user, whatever the umask.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
