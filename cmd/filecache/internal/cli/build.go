package cli

import "fmt"

// Build says which filecache this is: set by main from the -X link flags,
// the Go runtime and the libbpf linked in. filecache --version prints it
// on one line; doctor prints it too (--json: "build").
type Build struct {
	Version string `json:"version"` // git describe of the commit built
	Commit  string `json:"commit"`  // its full hash
	Go      string `json:"go"`      // runtime.Version()
	Libbpf  string `json:"libbpf"`  // MAJOR.MINOR, asked of the library itself
	Arch    string `json:"arch"`    // GOOS/GOARCH the binary was built for
}

func (b Build) String() string {
	return fmt.Sprintf("filecache %s (commit %s, %s, libbpf %s, %s)", b.Version, b.Commit, b.Go, b.Libbpf, b.Arch)
}
