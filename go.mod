module github.com/filecache/filecache

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/aquasecurity/libbpfgo v0.8.0-libbpf-1.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
