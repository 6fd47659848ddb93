//go:build ignore
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cgroup walk (filecache top --by-cgroup and --cgroup): walk_sb's walk of
 * a superblock's inode list in which every inode with pages has its
 * page-cache tree walked as the page walk (pages.bpf.c) walks a file's, each
 * page counted for the memory cgroup it is charged to. Included by
 * filecache.bpf.c after walk_sb_bounded, whose cursor checks it uses, and
 * after the page walk, whose tree encodings and page_memcg it uses.
 *
 * What it gives: the pages of each cgroup in the whole filesystem (cg_sums,
 * keyed by cgroup id), and the inodes walk_sb would return, ranked by the
 * pages that count (with FC_WALK_FILTER only those of the cgroups in
 * cg_sums marks allowed; with FC_WALK_PAIRS by the largest share one cgroup holds), each
 * with its split by cgroup (cg_splits, at the index of its record).
 *
 * A step is one inode of the list or one slot of a tree, so a walk costs
 * the inodes plus the cached pages of the filesystem, never its size. Runs
 * are bounded (FC_CG_LOOP steps with bpf_loop, FC_CG_STEPS without); the
 * next run goes on from where the last stopped, even inside an inode's tree:
 * the cursor is then that inode, checked as walk_sb_bounded checks its own
 * (still on the list, the same inode between the same neighbours), and the
 * tree is descended again from its head to the page index reached. Node
 * pointers and a run of pages' memory cgroup are never kept from one run to
 * the next, since the RCU read lock that keeps them alive is not.
 *
 * An inode whose tree changes under the walk (a node being freed, a large
 * folio where a run stopped) keeps the pages the walk found so far, and is
 * flagged (FC_CGS_CHANGED): the figures are what the walk saw, as walk_sb's
 * nrpages are the count at the moment it read them.
 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_cg_state);
} cg_state SEC(".maps");

/*
 * Pages by cgroup id, over the whole walk. User space empties it before
 * each walk and, for FC_WALK_FILTER, enters first the cgroups whose pages
 * count (a cgroup and its descendants), marked allowed. One map for both:
 * libbpf keeps an fd for every map of the object, in every process that
 * loads any of its programs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FC_CG_SUMS);
	__type(key, __u64);
	__type(value, struct fc_cg_sum);
} cg_sums SEC(".maps");

/* The split of each returned inode, at its record's index; user space maps it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_WALK_CAP);
	__type(key, __u32);
	__type(value, struct fc_cg_split);
} cg_splits SEC(".maps");

struct cg {
	struct fc_walk_params *p;
	struct fc_walk *w;
	struct fc_cursor *c;
	struct fc_cg_state *st;
};

static __always_inline int cg_maps(struct cg *g)
{
	__u32 zero = 0;

	g->p = bpf_map_lookup_elem(&walk_params, &zero);
	g->w = bpf_map_lookup_elem(&walk, &zero);
	g->c = bpf_map_lookup_elem(&walk_cursor, &zero);
	g->st = bpf_map_lookup_elem(&cg_state, &zero);
	return g->p && g->w && g->c && g->st ? 0 : -1;
}

/*
 * cg_flush adds the run of pages being counted to its cgroup's sum and, if
 * its cgroup counts, to the inode's. Global, so the verifier checks its loop
 * once.
 */
__noinline int cg_flush(void)
{
	struct fc_cg_sum *sum, none = {};
	struct fc_cg_state *st;
	struct cg g;
	__u64 id, n;
	__u32 i, k;

	if (cg_maps(&g))
		return 0;
	st = g.st;
	n = st->run_pages;
	if (!n)
		return 0;
	st->run_pages = 0;
	id = st->run_id;
	sum = bpf_map_lookup_elem(&cg_sums, &id);
	if (!sum) {
		bpf_map_update_elem(&cg_sums, &id, &none, BPF_NOEXIST);
		sum = bpf_map_lookup_elem(&cg_sums, &id);
	}
	if (sum)
		sum->pages += n;
	else
		st->unsummed += n; /* the map is full */
	if (!st->run_counted)
		return 0;
	st->counted += n;
	k = st->split.npairs;
	for (i = 0; i < FC_CG_PAIRS; i++) {
		if (i == k) {
			st->split.pairs[i].id = id;
			st->split.pairs[i].pages = n;
			st->split.npairs = k + 1;
			return 0;
		}
		if (st->split.pairs[i].id == id) {
			st->split.pairs[i].pages += n;
			return 0;
		}
	}
	st->split.other += n;
	return 0;
}

/*
 * cg_inode_end ends the walk of the current inode's tree (changed: it
 * changed under the walk): its pages are summed, and it is returned if it
 * can be among the inodes asked for. Global, checked once.
 */
__noinline int cg_inode_end(__u32 changed)
{
	struct fc_cg_split *dst;
	struct fc_cg_state *st;
	struct cg g;
	__u64 key, sum, inode;
	__u32 i, n, idx;

	if (cg_maps(&g))
		return 0;
	cg_flush();
	st = g.st;
	if (changed) {
		st->split.flags |= FC_CGS_CHANGED;
		st->changed++;
	}
	st->walked += st->split.walked;
	sum = st->counted;
	key = sum;
	if (g.p->flags & FC_WALK_PAIRS) {
		/* The pages of other are one cgroup's at most: a bound, never an understatement. */
		key = st->split.other;
		n = st->split.npairs;
		for (i = 0; i < FC_CG_PAIRS; i++) {
			if (i >= n)
				break;
			if (st->split.pairs[i].pages > key)
				key = st->split.pairs[i].pages;
		}
	}
	inode = st->inode;
	st->inode = 0;
	st->mapping = 0;
	st->node = 0;
	st->next = 0;
	if (!sum)
		return 0;
	g.w->pages += sum;
	g.w->cached++;
	if (key < g.p->min_pages)
		return 0;
	if (g.p->want && g.w->heapn >= g.p->want && key <= g.w->heap[0])
		return 0;
	if (!keep(key))
		return 0;
	idx = g.w->emitted;
	if (!emit(g.c->sb, inode, key))
		return 0;
	dst = bpf_map_lookup_elem(&cg_splits, &idx);
	if (dst)
		__builtin_memcpy(dst, &st->split, sizeof(*dst));
	return 0;
}

/* cg_count counts n pages of the folio at pagep; 1 when the walk must end (a layout it does not know). */
static __always_inline int cg_count(struct cg *g, __u64 pagep, __u64 n)
{
	struct fc_cg_state *st = g->st;
	__u64 memcg = page_memcg(pagep), id = 0;
	struct mem_cgroup *m = (void *)memcg;

	if (memcg != st->run_memcg || !st->run_pages) {
		/* As in pg_count: an id of 0 is a misread layout, not "no cgroup". */
		if (memcg != MEMCG_UNKNOWN && memcg)
			id = BPF_CORE_READ(m, css.cgroup, kn, id);
		if (memcg == MEMCG_UNKNOWN || (memcg && !id)) {
			g->w->status = FC_WALK_NO_MEMCG;
			return 1;
		}
		cg_flush();
		st->run_memcg = memcg;
		st->run_id = id;
		st->run_counted = 1;
		if (g->p->flags & FC_WALK_FILTER) {
			struct fc_cg_sum *sum = bpf_map_lookup_elem(&cg_sums, &id);

			st->run_counted = sum && sum->allowed;
		}
	}
	st->run_pages += n;
	st->split.walked += n;
	return 0;
}

/* cg_next steps to the next inode of the list and, if it has pages, begins its tree. */
static __always_inline int cg_next(struct cg *g)
{
	struct list_head *cur = (void *)g->c->node.addr, *next, *head;
	struct fc_cg_state *st = g->st;
	struct inode *inode;
	__u64 n;

	head = (void *)g->c->sb + bpf_core_field_offset(struct super_block, s_inodes);
	next = BPF_CORE_READ(cur, next);
	if (next == head) {
		g->w->status = FC_WALK_DONE;
		return 1;
	}
	/* It left the list under this run: as in walk_step. */
	if (!next || next == cur) {
		g->w->status = FC_WALK_LOST;
		return 1;
	}
	g->c->node.addr = (__u64)next;
	inode = inode_of(next);
	g->w->inodes++;
	/* i_data, not *i_mapping, as walk_sb counts it. */
	n = BPF_CORE_READ(inode, i_data.nrpages);
	if (!n)
		return 0;
	st->inode = (__u64)inode;
	st->mapping = (__u64)inode + bpf_core_field_offset(struct inode, i_data);
	st->next = 0;
	st->node = 0;
	st->counted = 0;
	/* pairs[] past npairs are never read. */
	st->split.walked = 0;
	st->split.other = 0;
	st->split.npairs = 0;
	st->split.flags = 0;
	return 0;
}

/* cg_descend goes from the tree's head down to the node holding page index st->next (pg_descend's way). */
static __always_inline int cg_descend(struct cg *g)
{
	struct fc_cg_state *st = g->st;
	struct address_space *mapping = (void *)st->mapping;
	struct xa_node *node;
	__u64 head, e;
	__u32 shift = 0, off = 0, d;

	if (bpf_core_field_size(struct xa_node, slots) != sizeof(st->slots)) {
		g->w->status = FC_WALK_LAYOUT;
		return 1;
	}
	head = (__u64)BPF_CORE_READ(mapping, i_pages.xa_head);
	if (!head || XA_VALUE(head)) {
		cg_inode_end(0);
		return 0;
	}
	if (!XA_NODE(head)) {
		/* One entry, for page index 0, held in the head itself. */
		if (XA_INTERNAL(head)) {
			cg_inode_end(1);
			return 0;
		}
		if (st->next == 0 && cg_count(g, head, 1))
			return 1;
		cg_inode_end(0);
		return 0;
	}
	node = (void *)(head - 2);
	for (d = 0; d < XA_LEVELS; d++) {
		shift = BPF_CORE_READ(node, shift);
		if (shift > 60 || shift % 6) {
			cg_inode_end(1);
			return 0;
		}
		/* Past the top node's reach: every index is walked. */
		if (d == 0 && shift < 58 && (st->next >> shift) >= XA_SLOTS) {
			cg_inode_end(0);
			return 0;
		}
		off = (st->next >> shift) & (XA_SLOTS - 1);
		if (xa_slot((__u64)node, off, &e)) {
			cg_inode_end(1);
			return 0;
		}
		if (!XA_NODE(e))
			break;
		node = (void *)(e - 2);
	}
	/* Too deep, or off a slot's first index: the tree changed shape since the last run. */
	if (d == XA_LEVELS || (st->next & ((1ULL << (shift & 63)) - 1))) {
		cg_inode_end(1);
		return 0;
	}
	st->node = (__u64)node;
	st->shift = shift;
	st->off = off;
	return 0;
}

/* cg_slot reads one slot of the node being walked, or leaves the node when its slots are done (pg_slot's way). */
static __always_inline int cg_slot(struct cg *g)
{
	struct fc_cg_state *st = g->st;
	struct xa_node *node = (void *)st->node, *child, *parent;
	__u64 e, folio;

	if (st->off >= XA_SLOTS) {
		/* Back up to the parent's next slot; the cursor is already there. */
		parent = BPF_CORE_READ(node, parent);
		if (!parent) {
			cg_inode_end(0);
			return 0;
		}
		st->off = BPF_CORE_READ(node, offset) + 1;
		st->shift = BPF_CORE_READ(parent, shift);
		st->node = (__u64)parent;
		return 0;
	}
	if (st->slots_of != st->node) {
		/* One read for the node's 64 slots, not one a slot. */
		void *slots = (void *)st->node + bpf_core_field_offset(struct xa_node, slots);

		if (bpf_probe_read_kernel(st->slots, sizeof(st->slots), slots)) {
			cg_inode_end(1);
			return 0;
		}
		st->slots_of = st->node;
	}
	e = st->slots[st->off & (XA_SLOTS - 1)];
	if (XA_NODE(e)) {
		child = (void *)(e - 2);
		st->node = (__u64)child;
		st->shift = BPF_CORE_READ(child, shift);
		st->off = 0;
		return 0;
	}
	folio = e;
	if (XA_INTERNAL(e)) {
		/* A sibling: the first slot of its large folio (or shadow); anything else, a node being freed. */
		if (!XA_SIBLING(e) || !(folio = st->slots[(e >> 2) & (XA_SLOTS - 1)]) || XA_INTERNAL(folio)) {
			cg_inode_end(1);
			return 0;
		}
	}
	if (folio && !XA_VALUE(folio) && cg_count(g, folio, 1ULL << (st->shift & 63)))
		return 1;
	st->off++;
	st->next += 1ULL << (st->shift & 63);
	return 0;
}

/*
 * cg_step takes one step of the walk and returns 1 when the run must end:
 * the walk ended (fc_walk.status says how) or the run's steps are spent.
 * Global, so the verifier checks it once however many times a run calls it.
 */
__noinline int cg_step(void)
{
	struct cg g;

	if (cg_maps(&g))
		return 1;
	if (g.w->status != FC_WALK_MORE || !g.c->left)
		return 1;
	g.c->left--;
	g.c->steps++;
	if (!g.st->inode)
		return cg_next(&g);
	if (!g.st->node) {
		/*
		 * Down to the cursor and its slot in one step, so that a run of
		 * any length moves on: the next run descends again.
		 */
		if (cg_descend(&g))
			return 1;
		if (!g.st->node)
			return 0;
	}
	return cg_slot(&g);
}

/*
 * cg_run_begin readies a run: it finds the superblock, and checks the cursor
 * of the run before (the inode whose tree it was in, or the last one
 * visited) before going on from it. -1: a map or this task's fd table is
 * unreadable; 1: the walk is over (no anchor, or a cursor refused); 0: go.
 */
static __always_inline int cg_run_begin(void)
{
	struct super_block *sb;
	struct list_head *head;
	struct cg g;
	__u64 left;

	if (cg_maps(&g))
		return -1;
	if (walk_target(g.p, g.w, &sb))
		return -1;
	if (!sb)
		return 1;
	head = (void *)sb + bpf_core_field_offset(struct super_block, s_inodes);
	if (g.c->runs++ == 0) {
		g.c->sb = (__u64)sb;
		g.c->node.addr = (__u64)head;
	} else {
		g.c->refused = cursor_check(g.c, sb, head);
		if (!g.c->refused && g.st->inode && g.st->inode != (__u64)inode_of((void *)g.c->node.addr))
			g.c->refused = FC_CUR_INODE;
		if (g.c->refused) {
			g.w->status = FC_WALK_LOST;
			return 1;
		}
	}
	if (g.c->steps >= g.p->max_steps) {
		g.w->status = FC_WALK_STEPS;
		return 1;
	}
	left = g.p->run_steps;
	if (!left || left > FC_CG_LOOP)
		left = FC_CG_LOOP;
	if (left > g.p->max_steps - g.c->steps)
		left = g.p->max_steps - g.c->steps;
	g.c->left = left;
	g.st->node = 0;
	g.st->slots_of = 0;
	g.st->run_pages = 0;
	g.st->run_memcg = 0;
	g.w->status = FC_WALK_MORE;
	return 0;
}

/* cg_run_end closes the run of pages being counted and, if the walk goes on, marks the cursor. */
static __always_inline void cg_run_end(void)
{
	struct list_head *head;
	struct cg g;

	if (cg_maps(&g))
		return;
	cg_flush();
	if (g.w->status != FC_WALK_MORE)
		return;
	if (g.c->steps >= g.p->max_steps) {
		g.w->status = FC_WALK_STEPS;
		return;
	}
	head = (void *)g.c->sb + bpf_core_field_offset(struct super_block, s_inodes);
	cursor_mark(g.c, head);
}

static long cg_loop_step(__u32 i, void *ctx)
{
	int stop = cg_step();

	/* Hide what clang knows of cg_step: the verifier wants 0 or 1 proven. */
	asm volatile("" : "+r"(stop));
	return stop ? 1 : 0;
}

/* walk_cg: one bpf_loop of up to FC_CG_LOOP steps a run (Linux >= 5.17). */
SEC("raw_tp")
int walk_cg(struct bpf_raw_tracepoint_args *ctx)
{
	struct fc_cursor *c;
	__u32 zero = 0;
	int r = cg_run_begin();

	if (r)
		return r < 0 ? 1 : 0;
	c = bpf_map_lookup_elem(&walk_cursor, &zero);
	if (!c)
		return 1;
	bpf_loop(c->left, cg_loop_step, 0, 0);
	cg_run_end();
	return 0;
}

/* cg_chunk takes up to FC_CG_CHUNK steps: a loop checked once, as walk_chunk's. */
__noinline int cg_chunk(void)
{
	__u32 i;

	for (i = 0; i < FC_CG_CHUNK; i++)
		if (cg_step())
			return 1;
	return 0;
}

/* walk_cg_bounded: FC_CG_STEPS steps a run at most, in nested bounded loops (older kernels). */
SEC("raw_tp")
int walk_cg_bounded(struct bpf_raw_tracepoint_args *ctx)
{
	int r = cg_run_begin();
	__u32 j;

	if (r)
		return r < 0 ? 1 : 0;
	for (j = 0; j < FC_CG_CHUNKS; j++)
		if (cg_chunk())
			break;
	cg_run_end();
	return 0;
}
