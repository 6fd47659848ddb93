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
 *                   (params.tid) making one chosen syscall (params.trigger).
 *                   It stays attached until user space closes the object,
 *                   since detaching waits for an RCU grace period.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "filecache.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "overlay.bpf.c"

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
	if (res->magic == OVERLAYFS_SUPER_MAGIC && (res->mode & 0170000) == 0100000) {
		/* The pages are the real file's: measure that one. */
		__u64 real = fc_real_inode((__u64)inode);

		if (real == FC_REAL_NO_BTF || real == FC_REAL_FAULT) {
			res->status = real == FC_REAL_NO_BTF ? FC_NO_OVL : FC_FAULT;
			return;
		}
		inode = (void *)(real & ~3ULL);
		res->layer = real & 3;
		res->real_ino = BPF_CORE_READ(inode, i_ino);
		res->real_dev = BPF_CORE_READ(inode, i_sb, s_dev);
		mapping = BPF_CORE_READ(inode, i_mapping);
	}
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

/*
 * walk_sb: what a whole filesystem holds in the page cache, without a list of
 * files. It follows the superblock's inode list (sb->s_inodes, linked through
 * inode->i_sb_list) without its lock: the test run holds the RCU read lock,
 * which keeps every inode it can reach from being freed, but not from leaving
 * the list. An inode removed under the walk points at itself
 * (list_del_init): that ends the walk as FC_WALK_LOST, and user space walks
 * again or says the figures are partial. max_steps bounds the walk whatever
 * the list holds.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_walk_params);
} walk_params SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_walk);
} walk SEC(".maps");

/* User space maps the records instead of copying them; a query run shrinks this map to one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_WALK_CAP);
	__type(key, __u32);
	__type(value, struct fc_inode);
} walk_records SEC(".maps");

struct walker {
	struct fc_walk *w;
	struct fc_walk_params *p;
	struct super_block *sb;
	struct list_head *head; /* &sb->s_inodes */
	struct list_head *cur;  /* the node last visited */
	__u32 done;
};

/*
 * The two functions below are global, so the verifier checks each once
 * rather than once for every path into it; they take kernel pointers as
 * plain numbers, which is all they are to a BPF program.
 */

/*
 * slot bounds a heap index for the verifier (FC_TOPK is a power of two and
 * every index the heap uses is below it anyway); the empty asm keeps clang
 * from folding the mask into checks the verifier cannot follow.
 */
static __always_inline __u32 slot(__u32 i)
{
	asm volatile("" : "+r"(i));
	return i & (FC_TOPK - 1);
}

/* Levels of a heap of FC_TOPK entries. */
#define HEAP_DEPTH 9

/*
 * keep says whether an inode of n pages can be among the want largest: it
 * keeps a min-heap of the want largest counts seen so far and admits n if
 * the heap is not full or n beats its smallest (a tie does not: any of
 * equal inodes will do). Everything in the final top was admitted when
 * seen, since the smallest kept only grows.
 */
__noinline int keep(__u64 n)
{
	struct fc_walk_params *p;
	struct fc_walk *w;
	__u32 zero = 0, want, k, i, j, c;
	__u64 *heap;

	p = bpf_map_lookup_elem(&walk_params, &zero);
	w = bpf_map_lookup_elem(&walk, &zero);
	if (!p || !w)
		return 0;
	want = p->want;
	if (!want)
		return 1;
	if (want > FC_TOPK)
		want = FC_TOPK;
	heap = w->heap;
	k = w->heapn;
	if (k > want)
		return 0;
	if (k < want) {
		/* Sift up from the new last slot. */
		w->heapn = k + 1;
		i = k;
		for (j = 0; j < HEAP_DEPTH && i > 0; j++) {
			c = (i - 1) / 2;
			if (heap[slot(c)] <= n)
				break;
			heap[slot(i)] = heap[slot(c)];
			i = c;
		}
		heap[slot(i)] = n;
		return 1;
	}
	if (n <= heap[0])
		return 0;
	/* Replace the smallest and sift down. */
	i = 0;
	for (j = 0; j < HEAP_DEPTH; j++) {
		__u64 a, b;
		__u32 right;

		c = 2 * i + 1;
		if (c >= k)
			break;
		/*
		 * The smaller child, chosen without a branch: a branch here
		 * doubles the verifier's paths at every level (2^9 in all).
		 * Page counts are below 2^63 and slots below 2^31, so the sign
		 * bit of a difference says which is smaller.
		 */
		a = heap[slot(c)];
		b = heap[slot(c + 1)];
		right = (__u32)((b - a) >> 63) & ((c + 1 - k) >> 31);
		c += right;
		if (heap[slot(c)] >= n)
			break;
		heap[slot(i)] = heap[slot(c)];
		i = c;
	}
	heap[slot(i)] = n;
	return 1;
}

/* emit writes the record of a matched inode (a struct inode *) of sb, past skip and within cap. */
__noinline int emit(__u64 sbp, __u64 inodep, __u64 n)
{
	struct super_block *sb = (void *)sbp;
	struct inode *inode = (void *)inodep;
	struct hlist_node *first;
	struct dentry *d, *parent;
	const unsigned char *name;
	struct fc_walk_params *p;
	struct fc_inode *rec;
	struct fc_walk *w;
	__u32 zero = 0, idx, off = 0, len, j;

	p = bpf_map_lookup_elem(&walk_params, &zero);
	w = bpf_map_lookup_elem(&walk, &zero);
	if (!p || !w)
		return 0;
	if (w->matched++ < p->skip)
		return 0;
	idx = w->emitted;
	if (idx >= p->cap || idx >= FC_WALK_CAP) {
		w->dropped++;
		return 0;
	}
	rec = bpf_map_lookup_elem(&walk_records, &idx);
	if (!rec)
		return 0;
	__builtin_memset(rec, 0, sizeof(*rec) - FC_PATH);
	w->emitted++;
	rec->nrpages = n;
	rec->size = BPF_CORE_READ(inode, i_size);
	rec->ino = BPF_CORE_READ(inode, i_ino);
	rec->mode = BPF_CORE_READ(inode, i_mode);
	rec->nlink = BPF_CORE_READ(inode, i_nlink);
	rec->rdev = BPF_CORE_READ(inode, i_rdev);

	/* The path: the inode's first name, then its parents' up to the root. */
	first = BPF_CORE_READ(inode, i_dentry.first);
	if (!first) {
		rec->flags |= FC_IN_NO_DENTRY;
		return 1;
	}
	if (bpf_core_field_exists(struct dentry, d_alias))
		d = (void *)first - bpf_core_field_offset(struct dentry, d_alias);
	else
		d = (void *)first - bpf_core_field_offset(struct dentry___old, d_u.d_alias);
	if (!BPF_CORE_READ(d, d_hash.pprev))
		rec->flags |= FC_IN_UNHASHED;
	for (j = 0; j < FC_DEPTH; j++) {
		parent = BPF_CORE_READ(d, d_parent);
		if (!parent) {
			rec->flags |= FC_IN_FAULT;
			break;
		}
		/* The root of the filesystem has no name of its own. */
		if (parent == d && d == BPF_CORE_READ(sb, s_root))
			break;
		len = BPF_CORE_READ(d, d_name.len);
		name = BPF_CORE_READ(d, d_name.name);
		if (len > 255 || !name) {
			rec->flags |= FC_IN_FAULT;
			break;
		}
		if (off > FC_PATH - 256) {
			rec->flags |= FC_IN_TRUNCATED;
			break;
		}
		if (bpf_probe_read_kernel(&rec->path[off], len, name)) {
			rec->flags |= FC_IN_FAULT;
			break;
		}
		rec->lens[j] = len;
		off += len;
		rec->depth = j + 1;
		rec->pathlen = off;
		if (parent == d) {
			/* A dentry of no tree (memfd, a disconnected export). */
			rec->flags |= FC_IN_DISCONNECTED;
			break;
		}
		d = parent;
	}
	if (j == FC_DEPTH)
		rec->flags |= FC_IN_TRUNCATED;
	return 1;
}

/* visit counts one inode and returns a record of it if asked for. */
static __always_inline void visit(struct walker *k, struct inode *inode)
{
	struct fc_walk *w = k->w;
	struct fc_walk_params *p = k->p;
	__u64 n;

	w->inodes++;
	/*
	 * The inode's own cache, i_data, not *i_mapping: the two differ only
	 * where a filesystem points i_mapping at another inode's cache, which
	 * would then be counted twice.
	 */
	n = BPF_CORE_READ(inode, i_data.nrpages);
	if (!n)
		return;
	w->pages += n;
	w->cached++;
	if (n < p->min_pages)
		return;
	/* Most inodes lose to a full heap: say so without a call. */
	if (p->want && w->heapn >= p->want && n <= w->heap[0])
		return;
	if (keep(n))
		emit((__u64)k->sb, (__u64)inode, n);
}

static long walk_step(__u32 i, void *ctx)
{
	struct walker *k = ctx;
	/* Locals, not k->...: inside BPF_CORE_READ they would be relocated too. */
	struct list_head *cur = k->cur, *next = BPF_CORE_READ(cur, next);
	struct inode *inode;

	if (next == k->head) {
		k->w->status = FC_WALK_DONE;
		k->done = 1;
		return 1;
	}
	if (!next || next == cur) {
		k->w->status = FC_WALK_LOST;
		k->done = 1;
		return 1;
	}
	/*
	 * Only inodes of this superblock are on its list, and none is freed
	 * under the RCU read lock: no i_sb check (it would cost a cache miss
	 * an inode, a tenth of the walk).
	 */
	inode = (void *)next - bpf_core_field_offset(struct inode, i_sb_list);
	k->cur = next;
	visit(k, inode);
	return 0;
}

/*
 * bdev_sb is the superblock of every block device's own inode (their page
 * cache is Buffers in /proc/meminfo), reached from a filesystem on one:
 * nothing needs to open a device.
 */
static __always_inline struct super_block *bdev_sb(struct super_block *sb)
{
	struct block_device *bdev = BPF_CORE_READ(sb, s_bdev);

	if (!bdev)
		return 0;
	if (bpf_core_field_exists(bdev->bd_mapping))
		return BPF_CORE_READ(bdev, bd_mapping, host, i_sb);
	return BPF_CORE_READ(bdev, bd_inode, i_sb);
}

SEC("raw_tp")
int walk_sb(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walker k = {};
	struct fc_walk_params *p;
	struct super_block *sb;
	struct file **fds, *file = 0;
	struct fdtable *fdt;
	__u32 zero = 0;
	__s32 fd;

	p = bpf_map_lookup_elem(&walk_params, &zero);
	k.w = bpf_map_lookup_elem(&walk, &zero);
	if (!p || !k.w)
		return 1;
	k.p = p;
	k.w->status = FC_WALK_NO_FILE;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 1;
	fds = BPF_CORE_READ(fdt, fd);
	fd = p->fd;
	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds) ||
	    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if (p->flags & FC_WALK_MAPPING)
		sb = BPF_CORE_READ(file, f_mapping, host, i_sb);
	else
		sb = BPF_CORE_READ(file, f_inode, i_sb);
	if (sb && (p->flags & FC_WALK_BDEV))
		sb = bdev_sb(sb);
	if (!sb)
		return 0;
	k.sb = sb;
	k.w->dev = BPF_CORE_READ(sb, s_dev);
	k.w->magic = BPF_CORE_READ(sb, s_magic);
	k.head = (void *)sb + bpf_core_field_offset(struct super_block, s_inodes);
	k.cur = k.head;
	bpf_loop(p->max_steps, walk_step, &k, 0);
	if (!k.done)
		k.w->status = FC_WALK_STEPS;
	return 0;
}

#include "pages.bpf.c"
