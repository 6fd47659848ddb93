//go:build ignore
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The page walk (--by-cgroup): for each fd of a batch, every page of the
 * file's page cache, counted by the memory cgroup it is charged to; with
 * FC_PG_RANGES (snapshot), the runs of consecutive cached pages instead.
 * Included by filecache.bpf.c.
 *
 * A file's page cache is an xarray (mapping->i_pages): a tree of nodes of
 * 64 slots, each slot a child node, a folio, a sibling entry (a large
 * folio's further slots, pointing back at its first), a value entry (a
 * shadow of an evicted page, a swap entry: not cached), or empty. A slot of
 * a node of shift s stands for 1 << s page indexes. The walk visits one
 * slot a step and only the nodes that exist, so its cost follows the pages
 * cached, never the file's size.
 *
 * The cursor (file, next page index) lives in the state map; node pointers
 * are kept only within a run (the test run holds the RCU read lock, which
 * keeps a node from being freed under it), so a run that stops early is
 * continued by the next one descending again to the cursor. Runs of pages
 * with the same memory cgroup are summed and written as one record.
 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_pg_params);
} pg_params SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_pg_state);
} pg_state SEC(".maps");

/* User space maps the records; other programs' loads shrink this map to one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_PG_CAP);
	__type(key, __u32);
	__type(value, struct fc_pg_rec);
} pg_records SEC(".maps");

/* Entry encodings of include/linux/xarray.h (64-slot nodes). */
#define XA_SLOTS 64
#define XA_INTERNAL(e) (((e) & 3) == 2)
#define XA_NODE(e) (XA_INTERNAL(e) && (e) > 4096)
#define XA_VALUE(e) ((e) & 1)
#define XA_SIBLING(e) (XA_INTERNAL(e) && (e) < (((XA_SLOTS - 1) << 2) | 2))
/* A node's shift is a multiple of 6 below 64: at most 11 levels. */
#define XA_LEVELS 11

/* memcg_data's flag bits (MEMCG_DATA_OBJEXTS, MEMCG_DATA_KMEM) and room for more. */
#define MEMCG_OBJEXTS 1ULL
#define MEMCG_KMEM 2ULL
#define MEMCG_FLAGS 7ULL
/* page_memcg's answer when the folio's memory cgroup is kept elsewhere. */
#define MEMCG_UNKNOWN 1ULL

/* page_memcg returns the memory cgroup a folio is charged to (0: none). */
static __always_inline __u64 page_memcg(__u64 pagep)
{
	__u64 data;

	/* Locals, not casts: inside BPF_CORE_READ an expression is relocated too. */
	struct folio *folio = (void *)pagep;
	struct page *page = (void *)pagep;
	struct obj_cgroup *objcg;

	if (bpf_core_field_exists(struct folio, memcg_data))
		data = BPF_CORE_READ(folio, memcg_data);
	else if (bpf_core_field_exists(struct page, memcg_data))
		data = BPF_CORE_READ(page, memcg_data);
	else if (bpf_core_field_exists(struct page, mem_cgroup))
		return (__u64)BPF_CORE_READ(page, mem_cgroup); /* 5.10 */
	else
		return MEMCG_UNKNOWN;
	if (data & MEMCG_OBJEXTS)
		return MEMCG_UNKNOWN; /* a slab page's: not page cache */
	if (!(data & ~MEMCG_FLAGS))
		return 0;
	/* An obj_cgroup: kernel memory before 7.x, every folio's from 7.x. */
	if ((data & MEMCG_KMEM) || bpf_core_field_exists(struct mem_cgroup_per_node, objcg)) {
		objcg = (void *)(data & ~MEMCG_FLAGS);
		return (__u64)BPF_CORE_READ(objcg, memcg);
	}
	return data & ~MEMCG_FLAGS;
}

/* pg_flush writes the run of pages being counted as a record. */
static __always_inline void pg_flush(struct fc_pg_params *p, struct fc_pg_state *st)
{
	struct fc_pg_rec *rec;
	__u32 idx = st->nrec;

	if (!st->cur_pages)
		return;
	if (idx >= p->cap || idx >= FC_PG_CAP)
		return; /* cannot happen: a step begins only with room for two */
	rec = bpf_map_lookup_elem(&pg_records, &idx);
	if (!rec)
		return;
	rec->memcg = st->cur_memcg;
	rec->id = st->cur_id;
	rec->pages = st->cur_pages;
	rec->first = st->cur_first;
	rec->slot = st->slot;
	rec->pad = 0;
	st->nrec = idx + 1;
	st->cur_pages = 0;
}

/* pg_finish ends the walk of files[slot] with status and moves the cursor to the next file. */
static __always_inline void pg_finish(struct fc_pg_params *p, struct fc_pg_state *st,
				      struct fc_pg_file *f, __u32 status)
{
	struct address_space *mapping = (void *)st->mapping;

	pg_flush(p, st);
	if (mapping)
		f->nrpages_end = BPF_CORE_READ(mapping, nrpages);
	f->status = status;
	st->slot++;
	st->next = 0;
	st->node = 0;
	st->mapping = 0;
	st->started = 0;
}

/*
 * pg_count counts n pages of the folio at pagep, the first at page index
 * st->next.
 */
static __always_inline int pg_count(struct fc_pg_params *p, struct fc_pg_state *st,
				    struct fc_pg_file *f, __u64 pagep, __u64 n)
{
	__u64 memcg, id = 0;
	struct mem_cgroup *m;

	if (p->flags & FC_PG_RANGES) {
		/* A snapshot: runs of consecutive pages; no cgroup is read. */
		if (st->cur_pages && st->next != st->cur_first + st->cur_pages)
			pg_flush(p, st);
		if (!st->cur_pages) {
			st->cur_first = st->next;
			st->cur_memcg = 0;
			st->cur_id = 0;
		}
		st->cur_pages += n;
		f->walked += n;
		return 0;
	}
	memcg = page_memcg(pagep);
	m = (void *)memcg;
	if (memcg != st->cur_memcg || !st->cur_pages) {
		/*
		 * A new run: its cgroup's id. Cgroup ids start at 1, so a
		 * memory cgroup whose id reads 0 is a layout misread, which
		 * must not pass for pages charged to no cgroup.
		 */
		if (memcg != MEMCG_UNKNOWN && memcg)
			id = BPF_CORE_READ(m, css.cgroup, kn, id);
		if (memcg == MEMCG_UNKNOWN || (memcg && !id)) {
			st->cur_pages = 0;
			pg_finish(p, st, f, FC_PG_NO_MEMCG);
			return 1;
		}
		pg_flush(p, st);
		st->cur_memcg = memcg;
		st->cur_id = id;
		st->cur_first = st->next;
	}
	st->cur_pages += n;
	f->walked += n;
	return 0;
}

/* pg_begin finds files[slot]'s mapping (the real file's, on overlayfs) and, the first time, its figures. */
static __always_inline void pg_begin(struct fc_pg_params *p, struct fc_pg_state *st,
				     struct fc_pg_file *f, __u32 slot)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds, *file = 0;
	struct address_space *mapping;
	struct inode *inode;
	struct fdtable *fdt;
	__u64 real, magic;
	__u32 mode;
	__s32 fd;

	fdt = BPF_CORE_READ(task, files, fdt);
	fd = p->fds[slot];
	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds)) {
		pg_finish(p, st, f, FC_NO_FILE);
		return;
	}
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file) {
		pg_finish(p, st, f, FC_NO_FILE);
		return;
	}
	inode = BPF_CORE_READ(file, f_inode);
	mapping = BPF_CORE_READ(file, f_mapping);
	if (!inode) {
		pg_finish(p, st, f, FC_FAULT);
		return;
	}
	magic = BPF_CORE_READ(inode, i_sb, s_magic);
	mode = BPF_CORE_READ(inode, i_mode);
	if (!st->started) {
		f->ino = BPF_CORE_READ(inode, i_ino);
		f->mode = mode;
		f->nlink = BPF_CORE_READ(inode, i_nlink);
		f->dev = BPF_CORE_READ(inode, i_sb, s_dev);
		f->magic = magic;
	}
	if (magic == OVERLAYFS_SUPER_MAGIC && (mode & 0170000) == 0100000) {
		real = fc_real_inode((__u64)inode);
		if (real == FC_REAL_NO_BTF || real == FC_REAL_FAULT) {
			pg_finish(p, st, f, real == FC_REAL_NO_BTF ? FC_NO_OVL : FC_FAULT);
			return;
		}
		inode = (void *)(real & ~3ULL);
		if (st->started && (real & 3) != f->layer) {
			/* Copied up between two runs: walk it again. */
			pg_finish(p, st, f, FC_PG_RACE);
			return;
		}
		f->layer = real & 3;
		f->real_ino = BPF_CORE_READ(inode, i_ino);
		f->real_dev = BPF_CORE_READ(inode, i_sb, s_dev);
		mapping = BPF_CORE_READ(inode, i_mapping);
	}
	if (!mapping) {
		pg_finish(p, st, f, FC_NO_MAPPING);
		return;
	}
	st->mapping = (__u64)mapping;
	if (!st->started) {
		f->size = BPF_CORE_READ(mapping, host, i_size);
		f->nrpages = BPF_CORE_READ(mapping, nrpages);
		st->started = 1;
	}
}

/* xa_slot reads slot off of node. */
static __always_inline int xa_slot(__u64 node, __u32 off, __u64 *e)
{
	void *slots = (void *)node + bpf_core_field_offset(struct xa_node, slots);

	return bpf_probe_read_kernel(e, sizeof(*e), slots + (off & (XA_SLOTS - 1)) * sizeof(__u64));
}

/* pg_descend goes from the tree's head down to the node holding page index st->next. */
static __always_inline void pg_descend(struct fc_pg_params *p, struct fc_pg_state *st,
				       struct fc_pg_file *f)
{
	struct address_space *mapping = (void *)st->mapping;
	struct xa_node *node;
	__u64 head, e;
	__u32 shift = 0, off = 0, d;

	/* The tree's nodes have 64 slots (XA_CHUNK_SHIFT 6) on every kernel of the matrix. */
	if (bpf_core_field_size(struct xa_node, slots) != sizeof(st->slots)) {
		pg_finish(p, st, f, FC_PG_LAYOUT);
		return;
	}
	head = (__u64)BPF_CORE_READ(mapping, i_pages.xa_head);
	if (!head || XA_VALUE(head)) {
		pg_finish(p, st, f, FC_OK);
		return;
	}
	if (!XA_NODE(head)) {
		/* One entry, for page index 0, held in the head itself. */
		if (XA_INTERNAL(head)) {
			pg_finish(p, st, f, FC_PG_RACE);
			return;
		}
		if (st->next == 0 && pg_count(p, st, f, head, 1))
			return;
		pg_finish(p, st, f, FC_OK);
		return;
	}
	node = (void *)(head - 2);
	for (d = 0; d < XA_LEVELS; d++) {
		shift = BPF_CORE_READ(node, shift);
		if (shift > 60 || shift % 6) {
			pg_finish(p, st, f, FC_FAULT);
			return;
		}
		/* Past the top node's reach: every index is walked. */
		if (d == 0 && shift < 58 && (st->next >> shift) >= XA_SLOTS) {
			pg_finish(p, st, f, FC_OK);
			return;
		}
		off = (st->next >> shift) & (XA_SLOTS - 1);
		if (xa_slot((__u64)node, off, &e)) {
			pg_finish(p, st, f, FC_FAULT);
			return;
		}
		if (!XA_NODE(e))
			break;
		node = (void *)(e - 2);
	}
	if (d == XA_LEVELS) {
		pg_finish(p, st, f, FC_FAULT);
		return;
	}
	/*
	 * The cursor sits on the first index of a slot of the node it lands
	 * in; off it, the tree changed shape since the last run.
	 */
	if (st->next & ((1ULL << (shift & 63)) - 1)) {
		pg_finish(p, st, f, FC_PG_RACE);
		return;
	}
	st->node = (__u64)node;
	st->shift = shift;
	st->off = off;
}

/* pg_slot reads one slot of the node being walked, or leaves the node when its slots are done. */
static __always_inline void pg_slot(struct fc_pg_params *p, struct fc_pg_state *st,
				    struct fc_pg_file *f)
{
	struct xa_node *node = (void *)st->node, *child, *parent;
	__u64 e, folio;

	if (st->off >= XA_SLOTS) {
		/* Back up to the parent's next slot; the cursor is already there. */
		parent = BPF_CORE_READ(node, parent);
		if (!parent) {
			pg_finish(p, st, f, FC_OK);
			return;
		}
		st->off = BPF_CORE_READ(node, offset) + 1;
		st->shift = BPF_CORE_READ(parent, shift);
		st->node = (__u64)parent;
		return;
	}
	if (st->slots_of != st->node) {
		/* One read for the node's 64 slots, not one a slot. */
		void *slots = (void *)st->node + bpf_core_field_offset(struct xa_node, slots);

		if (bpf_probe_read_kernel(st->slots, sizeof(st->slots), slots)) {
			pg_finish(p, st, f, FC_FAULT);
			return;
		}
		st->slots_of = st->node;
	}
	e = st->slots[st->off & (XA_SLOTS - 1)];
	if (XA_NODE(e)) {
		child = (void *)(e - 2);
		st->node = (__u64)child;
		st->shift = BPF_CORE_READ(child, shift);
		st->off = 0;
		return;
	}
	folio = e;
	if (XA_INTERNAL(e)) {
		/*
		 * A sibling points at the first slot of a large folio, or of
		 * the shadow an evicted one left; any other internal entry is
		 * a node being freed.
		 */
		if (!XA_SIBLING(e) || !(folio = st->slots[(e >> 2) & (XA_SLOTS - 1)]) || XA_INTERNAL(folio)) {
			pg_finish(p, st, f, FC_PG_RACE);
			return;
		}
	}
	if (folio && !XA_VALUE(folio) && pg_count(p, st, f, folio, 1ULL << (st->shift & 63)))
		return;
	st->off++;
	st->next += 1ULL << (st->shift & 63);
}

/*
 * pg_step takes one step of the walk and returns 1 when the run must end:
 * every file walked, or no room left for records. Global, so the verifier
 * checks it once, however many times a run calls it.
 */
__noinline int pg_step(void)
{
	struct fc_pg_params *p;
	struct fc_pg_state *st;
	struct fc_pg_file *f;
	__u32 zero = 0, slot;

	p = bpf_map_lookup_elem(&pg_params, &zero);
	st = bpf_map_lookup_elem(&pg_state, &zero);
	if (!p || !st)
		return 1;
	slot = st->slot;
	if (slot >= p->count || slot >= FC_BATCH) {
		st->status = FC_PG_DONE;
		return 1;
	}
	/* A step writes at most one record and the run's end one more. */
	if (st->nrec + 2 > p->cap)
		return 1;
	st->steps++;
	asm volatile("" : "+r"(slot));
	if (slot >= FC_BATCH)
		return 1;
	f = &st->files[slot];
	if (!st->mapping)
		pg_begin(p, st, f, slot);
	else if (!st->node)
		pg_descend(p, st, f);
	else
		pg_slot(p, st, f);
	return 0;
}

/* pg_run_begin readies the state for a run: node pointers of a past run are stale. */
static __always_inline int pg_run_begin(void)
{
	struct fc_pg_state *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&pg_state, &zero);
	if (!st)
		return -1;
	st->node = 0;
	st->slots_of = 0;
	st->mapping = 0;
	st->steps = 0;
	st->nrec = 0;
	st->cur_pages = 0;
	st->status = FC_PG_MORE;
	return 0;
}

/* pg_run_end writes the run of pages being counted, so a run's records are whole. */
static __always_inline void pg_run_end(void)
{
	struct fc_pg_params *p;
	struct fc_pg_state *st;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&pg_params, &zero);
	st = bpf_map_lookup_elem(&pg_state, &zero);
	if (p && st)
		pg_flush(p, st);
}

static long pg_loop_step(__u32 i, void *ctx)
{
	int stop = pg_step();

	/* Hide what clang knows of pg_step: the verifier wants 0 or 1 proven. */
	asm volatile("" : "+r"(stop));
	return stop ? 1 : 0;
}

/* walk_pages: bpf_loop, up to params.max_steps steps a run (Linux >= 5.17). */
SEC("raw_tp")
int walk_pages(struct bpf_raw_tracepoint_args *ctx)
{
	struct fc_pg_params *p;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&pg_params, &zero);
	if (!p || pg_run_begin())
		return 1;
	bpf_loop(p->max_steps, pg_loop_step, 0, 0);
	pg_run_end();
	return 0;
}

/* walk_pages_bounded: FC_PG_STEPS steps a run, a loop the verifier follows (older kernels). */
SEC("raw_tp")
int walk_pages_bounded(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 i;

	if (pg_run_begin())
		return 1;
	for (i = 0; i < FC_PG_STEPS; i++)
		if (pg_step())
			break;
	pg_run_end();
	return 0;
}
