//go:build cgo

package cgo

/*
#include <bpf/libbpf.h>

// libbpfgo's BPFHelperIsSupported (v0.8.0) reads a stale errno and reports
// the probe's expected verifier rejection as a failure; ask libbpf directly.
static int loop_supported(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
}
*/
import "C"

// helperLoopSupported says whether raw_tp programs may call bpf_loop here
// (Linux >= 5.17). A refused probe (no privileges) says yes; the load that
// follows then fails with the real reason.
func helperLoopSupported() bool { return C.loop_supported() == 1 }
