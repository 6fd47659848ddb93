//go:build ignore
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * filecache's kernel side: for each fd of a batch, read the page count of the
 * file that fd names in the *calling* task's fd table.
 *
 * Nothing is attached: user space runs a program with BPF_PROG_TEST_RUN,
 * which executes it in the caller's own task, so bpf_get_current_task() is
 * filecache itself. A file is named by an fd filecache opened (O_PATH), never
 * by an inode number, so another filesystem's inode cannot match and no other
 * process can change an answer.
 *
 * Three programs answer the same query; user space loads one:
 *   query_loop      bpf_loop over the whole batch (Linux >= 5.17)
 *   query_bounded   a bounded loop over FC_STEP fds from params.start (older)
 *   query_attached  the bounded loop, attached to the sys_enter raw
 *                   tracepoint for kernels that cannot test-run raw_tp
 *                   programs: it answers only filecache's own thread
 *                   (params.tid) making one chosen syscall (params.trigger),
 *                   and user space detaches it right after.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "filecache.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_params);
} params SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_results);
} results SEC(".maps");

struct query {
	struct fc_params *p;
	struct fc_results *r;
	struct file **fd;      /* the caller's fdtable->fd array */
	unsigned int max_fds;
};

/* answer fills one result slot from the file behind fd. */
static __always_inline void answer(struct query *q, __u32 i)
{
	struct fc_result *res;
	struct address_space *mapping;
	struct inode *inode;
	struct file *file = 0;
	__s32 fd;

	/* Keep clang from folding the bound into a running pointer the verifier cannot check. */
	asm volatile("" : "+r"(i));
	if (i >= FC_BATCH)
		return;
	res = &q->r->results[i];
	__builtin_memset(res, 0, sizeof(*res));

	fd = q->p->fds[i];
	if (fd < 0 || (__u32)fd >= q->max_fds ||
	    bpf_probe_read_kernel(&file, sizeof(file), &q->fd[fd]) || !file) {
		res->status = FC_NO_FILE;
		return;
	}
	inode = BPF_CORE_READ(file, f_inode);
	mapping = BPF_CORE_READ(file, f_mapping);
	if (!inode) {
		res->status = FC_FAULT;
		return;
	}
	res->ino = BPF_CORE_READ(inode, i_ino);
	res->mode = BPF_CORE_READ(inode, i_mode);
	res->nlink = BPF_CORE_READ(inode, i_nlink);
	res->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	res->magic = BPF_CORE_READ(inode, i_sb, s_magic);
	if (!mapping) {
		res->status = FC_NO_MAPPING;
		return;
	}
	/*
	 * f_mapping, not f_inode->i_mapping: for an opened block device it is
	 * the device's own cache, and its host's i_size the device's size.
	 */
	res->nrpages = BPF_CORE_READ(mapping, nrpages);
	res->size = BPF_CORE_READ(mapping, host, i_size);
	res->status = FC_OK;
}

/* begin looks up both maps and the caller's fd table. */
static __always_inline int begin(struct query *q)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	__u32 zero = 0;

	q->p = bpf_map_lookup_elem(&params, &zero);
	q->r = bpf_map_lookup_elem(&results, &zero);
	if (!q->p || !q->r)
		return -1;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return -1;
	q->fd = BPF_CORE_READ(fdt, fd);
	q->max_fds = BPF_CORE_READ(fdt, max_fds);
	return 0;
}

static long loop_step(__u32 i, void *ctx)
{
	answer(ctx, i);
	return 0;
}

SEC("raw_tp")
int query_loop(struct bpf_raw_tracepoint_args *ctx)
{
	struct query q = {};
	__u32 n;

	if (begin(&q))
		return 1;
	n = q.p->count;
	if (n > FC_BATCH)
		n = FC_BATCH;
	bpf_loop(n, loop_step, &q, 0);
	return 0;
}

/* bounded answers FC_STEP slots from params.start: no bpf_loop needed. */
static __always_inline int bounded(void)
{
	struct query q = {};
	__u32 start, i, n;

	if (begin(&q))
		return 1;
	n = q.p->count;
	start = q.p->start;
	if (n > FC_BATCH || start >= n)
		return 2;
	for (i = 0; i < FC_STEP; i++) {
		if (start + i >= n)
			break;
		answer(&q, start + i);
	}
	return 0;
}

SEC("raw_tp")
int query_bounded(struct bpf_raw_tracepoint_args *ctx)
{
	return bounded();
}

SEC("raw_tp/sys_enter")
int query_attached(struct bpf_raw_tracepoint_args *ctx)
{
	struct fc_params *p;
	__u32 zero = 0;

	/* sys_enter(struct pt_regs *regs, long id): only our thread's trigger. */
	p = bpf_map_lookup_elem(&params, &zero);
	if (!p || (__u32)bpf_get_current_pid_tgid() != p->tid || ctx->args[1] != p->trigger)
		return 0;
	bounded();
	return 0;
}
