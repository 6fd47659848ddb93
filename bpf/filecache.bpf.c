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

/* cached counts an inode of n > 0 pages and returns a record of it if asked for. */
static __always_inline void cached(struct walker *k, struct inode *inode, __u64 n)
{
	struct fc_walk *w = k->w;
	struct fc_walk_params *p = k->p;

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

/* visit counts one inode and returns a record of it if asked for. */
static __always_inline void visit(struct walker *k, struct inode *inode)
{
	__u64 n;

	k->w->inodes++;
	/*
	 * The inode's own cache, i_data, not *i_mapping: the two differ only
	 * where a filesystem points i_mapping at another inode's cache, which
	 * would then be counted twice.
	 */
	n = BPF_CORE_READ(inode, i_data.nrpages);
	if (n)
		cached(k, inode, n);
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

/*
 * walk_target finds the superblock a walk run is asked about: that of
 * params.fd (of its f_mapping's host with FC_WALK_MAPPING), or with
 * FC_WALK_BDEV the block devices' one reached through it; *sbp stays 0 and
 * the status FC_WALK_NO_FILE when there is none. Non-zero when this task's
 * fd table is unreadable.
 */
static __always_inline int walk_target(struct fc_walk_params *p, struct fc_walk *w, struct super_block **sbp)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct super_block *sb;
	struct file **fds, *file = 0;
	struct fdtable *fdt;
	__s32 fd;

	*sbp = 0;
	w->status = FC_WALK_NO_FILE;
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
	w->dev = BPF_CORE_READ(sb, s_dev);
	w->magic = BPF_CORE_READ(sb, s_magic);
	*sbp = sb;
	return 0;
}

SEC("raw_tp")
int walk_sb(struct bpf_raw_tracepoint_args *ctx)
{
	struct walker k = {};
	struct fc_walk_params *p;
	struct super_block *sb;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&walk_params, &zero);
	k.w = bpf_map_lookup_elem(&walk, &zero);
	if (!p || !k.w)
		return 1;
	k.p = p;
	if (walk_target(p, k.w, &sb))
		return 1;
	if (!sb)
		return 0;
	k.sb = sb;
	k.head = (void *)sb + bpf_core_field_offset(struct super_block, s_inodes);
	k.cur = k.head;
	bpf_loop(p->max_steps, walk_step, &k, 0);
	if (!k.done)
		k.w->status = FC_WALK_STEPS;
	return 0;
}

/*
 * walk_sb_bounded: walk_sb for kernels without bpf_loop (Linux < 5.17). The
 * verifier of those kernels follows every step of a loop: Linux 5.10 takes
 * one loop of this walk up to 768 steps (168,000 instructions verified, 2.5 s
 * under emulation) and gives up before 896 ("the sequence of 8193 jumps is
 * too complex"). So the steps are nested loops in global functions, each
 * checked once: a run makes FC_GROUPS calls of walk_chunks, which makes
 * FC_CHUNKS calls of walk_chunk, a loop of FC_CHUNK steps (FC_RUN_STEPS =
 * 16384 steps for 12,200 instructions verified on 5.10, 11,600 on 6.18,
 * where walk_sb takes 7,400). A run leaves a cursor on the last inode it
 * visited; user space runs the program again until the walk ends. Sums, heap
 * and records carry over in their maps, so the runs together answer what
 * one walk_sb run does.
 *
 * Between two runs the RCU read lock is let go: the cursor's inode may leave
 * the list, be freed, and its memory be reused, by another inode (of this
 * filesystem or another one of the same type: inode caches with a
 * constructor are never merged with other caches) or, once its slab page is
 * freed, by anything. The program holds no reference, so it never follows a
 * cursor it has not checked, and reads it only with probe reads, which fail
 * instead of faulting. A resumed run trusts the cursor only if, read inside
 * this run (under its RCU read lock, so what it checks stays allocated until
 * the run ends):
 *   - it is on a list: it does not point at itself (list_del_init leaves an
 *     inode that left the list so, until it is freed and reused);
 *   - it is an inode of this superblock, with the inode number and
 *     generation recorded when the last run stopped;
 *   - its neighbours are at the addresses recorded then, both point back at
 *     it, and each (unless it is the list head, which lives as long as the
 *     mounted superblock the anchor fd pins) has the inode number and
 *     generation recorded for it.
 * Otherwise the run ends as FC_WALK_LOST (fc_cursor.refused says which
 * check failed) and user space walks that filesystem again from the start,
 * or calls it partial: never a wrong row. An inode of another filesystem, or
 * another inode of this one, fails the identity check; memory that is no
 * inode any more would have to hold this superblock's address, the number
 * and generation, and two pointers to list nodes that point back at it.
 * What a check cannot tell apart is the same file read back from disk into
 * the same memory: it then fails the neighbour check, since a new inode
 * goes to the head of the list, not between the inodes the cursor had,
 * unless those two were evicted and read back into their own memory too,
 * in an order that rebuilt the same three links, all between two runs. Even
 * then every row is still a live inode of this filesystem read in this run
 * (the walk only follows next pointers from a checked inode); the walk
 * could count again inodes it had passed, as a run that started over would.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_cursor);
} walk_cursor SEC(".maps");

static __always_inline struct inode *inode_of(struct list_head *node)
{
	return (void *)node - bpf_core_field_offset(struct inode, i_sb_list);
}

/* link_of records the place node (an inode's i_sb_list) on the list; non-zero if a read failed. */
static __always_inline int link_of(struct list_head *node, struct fc_link *l)
{
	struct inode *in = inode_of(node);

	l->addr = (__u64)node;
	return bpf_core_read(&l->ino, sizeof(l->ino), &in->i_ino) |
	       bpf_core_read(&l->gen, sizeof(l->gen), &in->i_generation);
}

/* same says whether node (not the list head) is the inode recorded in want. */
static __always_inline int same(struct list_head *node, struct fc_link *want)
{
	struct fc_link l = {};

	return !link_of(node, &l) && l.ino == want->ino && l.gen == want->gen;
}

/* cursor_check: may this run resume after c->node? FC_CUR_OK or why not (see above). */
static __always_inline __u32 cursor_check(struct fc_cursor *c, struct super_block *sb, struct list_head *head)
{
	struct list_head *node = (void *)c->node.addr, *prev = 0, *next = 0, *back = 0;
	struct super_block *isb = 0;

	if (c->sb != (__u64)sb)
		return FC_CUR_SUPER;
	if (bpf_core_read(&next, sizeof(next), &node->next) || bpf_core_read(&prev, sizeof(prev), &node->prev))
		return FC_CUR_FAULT;
	if (next == node || prev == node)
		return FC_CUR_UNLINKED;
	if (bpf_core_read(&isb, sizeof(isb), &inode_of(node)->i_sb))
		return FC_CUR_FAULT;
	if (isb != sb)
		return FC_CUR_SB;
	if (!same(node, &c->node))
		return FC_CUR_INODE;
	if ((__u64)prev != c->prev.addr || (__u64)next != c->next.addr)
		return FC_CUR_NEIGHBOURS;
	if (bpf_core_read(&back, sizeof(back), &prev->next) || back != node)
		return FC_CUR_NEIGHBOURS;
	back = 0;
	if (bpf_core_read(&back, sizeof(back), &next->prev) || back != node)
		return FC_CUR_NEIGHBOURS;
	if (prev != head && !same(prev, &c->prev))
		return FC_CUR_NEIGHBOURS;
	if (next != head && !same(next, &c->next))
		return FC_CUR_NEIGHBOURS;
	return FC_CUR_OK;
}

/* cursor_mark records the cursor's inode and its neighbours for the next run to check. */
static __always_inline void cursor_mark(struct fc_cursor *c, struct list_head *head)
{
	struct list_head *node = (void *)c->node.addr;
	struct list_head *prev = BPF_CORE_READ(node, prev), *next = BPF_CORE_READ(node, next);

	/* A failed read leaves zeros, which no check at resume accepts. */
	link_of(node, &c->node);
	c->prev.addr = (__u64)prev;
	c->prev.ino = c->prev.gen = 0;
	if (prev != head)
		link_of(prev, &c->prev);
	c->next.addr = (__u64)next;
	c->next.ino = c->next.gen = 0;
	if (next != head)
		link_of(next, &c->next);
}

/* walk_chunk's answers. */
#define CHUNK_ON 0    /* FC_CHUNK steps taken: call again */
#define CHUNK_ENDED 1 /* the walk ended: fc_walk.status says how */
#define CHUNK_SPENT 2 /* the run's steps (fc_cursor.left) are spent */

/*
 * walk_chunk takes up to FC_CHUNK steps from the cursor, within the run's
 * fc_cursor.left, and leaves the cursor on the last inode visited; -1 when a
 * map is missing. Global, so the verifier checks its loop once, not once for
 * each call; everything it changes is in maps, so the callers' loops give
 * the verifier one state an iteration. Cursor and budget stay in registers
 * for the loop: written back once, they cost nothing an inode (the walk
 * takes what walk_sb takes, ~160 ns an inode here).
 */
__noinline int walk_chunk(__u64 sbp)
{
	struct walker k = {};
	struct fc_cursor *c;
	struct list_head *cur, *next;
	__u32 zero = 0, i, left;
	int r = CHUNK_ON;

	k.p = bpf_map_lookup_elem(&walk_params, &zero);
	k.w = bpf_map_lookup_elem(&walk, &zero);
	c = bpf_map_lookup_elem(&walk_cursor, &zero);
	if (!k.p || !k.w || !c)
		return -1;
	k.sb = (void *)sbp;
	k.head = (void *)sbp + bpf_core_field_offset(struct super_block, s_inodes);
	cur = (void *)c->node.addr;
	left = c->left;
	for (i = 0; i < FC_CHUNK; i++) {
		if (i >= left) {
			r = CHUNK_SPENT;
			break;
		}
		next = BPF_CORE_READ(cur, next);
		if (next == k.head) {
			k.w->status = FC_WALK_DONE;
			r = CHUNK_ENDED;
			break;
		}
		/* It left the list under this run: as in walk_step. */
		if (!next || next == cur) {
			k.w->status = FC_WALK_LOST;
			r = CHUNK_ENDED;
			break;
		}
		cur = next;
		visit(&k, inode_of(cur));
	}
	/* i steps taken, the last to cur. */
	c->node.addr = (__u64)cur;
	c->left = left - i;
	c->steps += i;
	return r;
}

/* walk_chunks calls walk_chunk up to FC_CHUNKS times: a second level of loop, checked once too. */
__noinline int walk_chunks(__u64 sbp)
{
	int r = CHUNK_ON;
	__u32 j;

	for (j = 0; j < FC_CHUNKS; j++) {
		r = walk_chunk(sbp);
		if (r != CHUNK_ON)
			break;
	}
	return r;
}

SEC("raw_tp")
int walk_sb_bounded(struct bpf_raw_tracepoint_args *ctx)
{
	struct fc_walk_params *p;
	struct fc_cursor *c;
	struct super_block *sb;
	struct list_head *head;
	struct fc_walk *w;
	__u32 zero = 0, j;
	__u64 left;
	int r = CHUNK_SPENT;

	p = bpf_map_lookup_elem(&walk_params, &zero);
	w = bpf_map_lookup_elem(&walk, &zero);
	c = bpf_map_lookup_elem(&walk_cursor, &zero);
	if (!p || !w || !c)
		return 1;
	if (walk_target(p, w, &sb))
		return 1;
	if (!sb)
		return 0;
	head = (void *)sb + bpf_core_field_offset(struct super_block, s_inodes);
	if (c->runs++ == 0) {
		c->sb = (__u64)sb;
		c->node.addr = (__u64)head;
	} else {
		c->refused = cursor_check(c, sb, head);
		if (c->refused) {
			w->status = FC_WALK_LOST;
			return 0;
		}
	}
	c->left = p->run_steps;
	if (!c->left || c->left > FC_RUN_STEPS)
		c->left = FC_RUN_STEPS;
	left = p->max_steps > c->steps ? p->max_steps - c->steps : 0;
	if (c->left > left)
		c->left = left;
	for (j = 0; j < FC_GROUPS; j++) {
		r = walk_chunks((__u64)sb);
		if (r != CHUNK_ON)
			break;
	}
	if (r < 0)
		return 1;
	if (r == CHUNK_ENDED)
		return 0;
	w->status = c->steps >= p->max_steps ? FC_WALK_STEPS : FC_WALK_MORE;
	cursor_mark(c, head);
	return 0;
}

#include "pages.bpf.c"
#include "cgwalk.bpf.c"
#include "dir.bpf.c"
