//go:build ignore
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * walk_dir, the dentry walk: a directory's regular files, read from the
 * directory's own dentry without an open per file. Given an fd of the
 * caller on a directory, a test run follows the directory's list of child
 * dentries (d_children through d_sib from Linux 6.8, d_subdirs through
 * d_child before) and writes, for each child that is a regular file it can
 * vouch for, the inode number, size, link count and page count. User space
 * answers a name of its directory listing (getdents) from here only when the
 * inode number matches; every other name is opened as before.
 *
 * No lock is taken: the test run holds the RCU read lock, under which no
 * dentry or inode it reaches is freed (both are freed after a grace
 * period), and every kernel read is a probe read, which fails rather than
 * faults. The list may change under the walk (creations, unlinks, renames):
 * a child is recorded only if, read in this run, its d_parent is the
 * directory, it is hashed (not unlinked), positive, neither a mount point
 * nor managed (automount) nor in need of the filesystem's revalidation
 * (network filesystems, FUSE, overlayfs), and its inode is a regular file on
 * the directory's superblock with a link left. A child whose d_parent is
 * another directory (renamed away while the walk stood on it) ends the walk
 * as FC_DIR_LOST: what was recorded stands, the rest of the listing is
 * opened. A walk misses children added under it, and may pass a child
 * twice when the list is reordered under it (libfs cursors): user space
 * opens every inode number it sees twice.
 *
 * Every loop is bounded, in nested global functions the verifier checks
 * once each, as in walk_sb_bounded, so the same program runs on every
 * kernel from 5.10: a run takes FC_DIR_STEPS list steps at most and leaves
 * a cursor on the last node it visited. The next run (resume) goes on from
 * there only after checking, under its own RCU read lock, that the node is
 * still a child of the directory and still on the list (the node its back
 * link names points to it): a dentry freed and reused between two runs
 * fails that, and the walk ends as FC_DIR_LOST.
 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_DIR_SLOTS);
	__type(key, __u32);
	__type(value, struct fc_dir);
} dir_state SEC(".maps");

/* Slot s holds its records at keys [s * FC_DIR_CAP, (s + 1) * FC_DIR_CAP). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_DIR_SLOTS * FC_DIR_CAP);
	__type(key, __u32);
	__type(value, struct fc_child);
} dir_records SEC(".maps");

/* Before Linux 6.15: DCACHE_MOUNTED | DCACHE_NEED_AUTOMOUNT | DCACHE_MANAGE_TRANSIT. */
#define FC_DCACHE_MANAGED_OLD 0x70000
/* DCACHE_OP_REVALIDATE | DCACHE_OP_WEAK_REVALIDATE, the same in every version. */
#define FC_DCACHE_REVALIDATE 0x804

/* dir_visit's and dir_chunk's answers */
#define DIR_ON 0    /* go on */
#define DIR_ENDED 1 /* the walk ended: fc_dir.status says how */

/*
 * A field of a block read at once: the verifier sees the relocated offset
 * as a constant, and a layout that puts the field past the block takes the
 * slow path (a probe read of each field) instead.
 */
#define IN_BLOCK(buf, off, size) ((off) + (size) <= sizeof(buf))
#define FROM_BLOCK(type, buf, off) (*(type *)((char *)(buf) + (off)))

/*
 * dir_visit records the child whose list node is at nodep, if it is a
 * regular file the walk can vouch for (above). DIR_ENDED when the child is
 * no longer the directory's; -1 when a map is missing. Global: the verifier
 * checks it once, not once per step. Its cost is its cache misses and probe
 * reads, so each of the dentry's and the inode's leading fields comes out of
 * one probe read of their first bytes (where the kernel's layout puts them
 * there, as every kernel from 5.10 to 7.x does).
 */
__noinline int dir_visit(__u64 nodep, __u32 slot)
{
	struct fc_dir *st = bpf_map_lookup_elem(&dir_state, &slot);
	__u64 dbuf[8] = {}, ibuf[12] = {};
	struct dentry *child, *parent;
	struct inode *inode;
	struct super_block *isb;
	struct address_space *mapping;
	struct fc_child *rec;
	unsigned int flags, nlink;
	umode_t mode;
	void *hashed;
	__u64 ino, size, nrpages = 0;
	__u32 key;

	if (!st)
		return -1;
	child = (void *)nodep - st->off;

	/* The dentry: d_flags, d_hash, d_parent, d_inode. */
	if (IN_BLOCK(dbuf, bpf_core_field_offset(struct dentry, d_flags), 4) &&
	    IN_BLOCK(dbuf, bpf_core_field_offset(struct dentry, d_hash.pprev), 8) &&
	    IN_BLOCK(dbuf, bpf_core_field_offset(struct dentry, d_parent), 8) &&
	    IN_BLOCK(dbuf, bpf_core_field_offset(struct dentry, d_inode), 8)) {
		if (bpf_probe_read_kernel(dbuf, sizeof(dbuf), child))
			goto lost;
		flags = FROM_BLOCK(unsigned int, dbuf, bpf_core_field_offset(struct dentry, d_flags));
		hashed = FROM_BLOCK(void *, dbuf, bpf_core_field_offset(struct dentry, d_hash.pprev));
		parent = FROM_BLOCK(struct dentry *, dbuf, bpf_core_field_offset(struct dentry, d_parent));
		inode = FROM_BLOCK(struct inode *, dbuf, bpf_core_field_offset(struct dentry, d_inode));
	} else {
		parent = 0;
		if (bpf_core_read(&parent, sizeof(parent), &child->d_parent))
			goto lost;
		flags = BPF_CORE_READ(child, d_flags);
		hashed = BPF_CORE_READ(child, d_hash.pprev);
		inode = BPF_CORE_READ(child, d_inode);
	}
	if ((__u64)parent != st->dir)
		goto lost;
	if (!inode || (flags & st->mask) || !hashed)
		return DIR_ON; /* negative (or a cursor), a mount point, to revalidate, or unlinked */

	/* The inode: i_mode, i_sb, i_mapping, i_ino, i_nlink, i_size. */
	if (IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_mode), 2) &&
	    IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_sb), 8) &&
	    IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_mapping), 8) &&
	    IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_ino), 8) &&
	    IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_nlink), 4) &&
	    IN_BLOCK(ibuf, bpf_core_field_offset(struct inode, i_size), 8)) {
		if (bpf_probe_read_kernel(ibuf, sizeof(ibuf), inode))
			return DIR_ON;
		mode = FROM_BLOCK(umode_t, ibuf, bpf_core_field_offset(struct inode, i_mode));
		isb = FROM_BLOCK(struct super_block *, ibuf, bpf_core_field_offset(struct inode, i_sb));
		mapping = FROM_BLOCK(struct address_space *, ibuf, bpf_core_field_offset(struct inode, i_mapping));
		ino = FROM_BLOCK(__u64, ibuf, bpf_core_field_offset(struct inode, i_ino));
		nlink = FROM_BLOCK(unsigned int, ibuf, bpf_core_field_offset(struct inode, i_nlink));
		size = FROM_BLOCK(__u64, ibuf, bpf_core_field_offset(struct inode, i_size));
	} else {
		mode = BPF_CORE_READ(inode, i_mode);
		isb = BPF_CORE_READ(inode, i_sb);
		mapping = BPF_CORE_READ(inode, i_mapping);
		ino = BPF_CORE_READ(inode, i_ino);
		nlink = BPF_CORE_READ(inode, i_nlink);
		size = BPF_CORE_READ(inode, i_size);
	}
	if ((__u64)isb != st->sb || (mode & 0170000) != 0100000 || !nlink || !mapping)
		return DIR_ON; /* another filesystem's, not a regular file, unlinked */
	if ((void *)mapping == (void *)inode + bpf_core_field_offset(struct inode, i_data)) {
		/* The inode's own cache, whose host is the inode (i_size above). */
		if (bpf_probe_read_kernel(&nrpages, sizeof(nrpages), &mapping->nrpages))
			return DIR_ON;
	} else {
		/* As the query program reads an open file: f_mapping->host's size. */
		nrpages = BPF_CORE_READ(mapping, nrpages);
		size = BPF_CORE_READ(mapping, host, i_size);
	}

	if (st->count >= FC_DIR_CAP || slot >= FC_DIR_SLOTS)
		return DIR_ON; /* cannot happen: a record a step at most */
	key = slot * FC_DIR_CAP + st->count;
	rec = bpf_map_lookup_elem(&dir_records, &key);
	if (!rec)
		return -1;
	rec->ino = ino;
	rec->nrpages = nrpages;
	rec->size = size;
	rec->nlink = nlink;
	rec->mode = mode;
	st->count++;
	return DIR_ON;
lost:
	st->status = FC_DIR_LOST;
	return DIR_ENDED;
}

/*
 * dir_chunk takes up to FC_DIR_CHUNK list steps from the cursor and leaves
 * the cursor on the last node visited; -1 when a map is missing.
 */
__noinline int dir_chunk(__u32 slot)
{
	struct fc_dir *st = bpf_map_lookup_elem(&dir_state, &slot);
	__u64 node, next;
	int r = DIR_ON, v;
	__u32 i;

	if (!st)
		return -1;
	node = st->node;
	for (i = 0; i < FC_DIR_CHUNK; i++) {
		next = 0;
		/* The first word of an hlist_node, hlist_head or list_head is next. */
		if (bpf_probe_read_kernel(&next, sizeof(next), (void *)node)) {
			st->status = FC_DIR_LOST;
			r = DIR_ENDED;
			break;
		}
		if (next == st->end) {
			st->status = FC_DIR_DONE;
			r = DIR_ENDED;
			break;
		}
		if (!next || next == node) {
			/* A list never holds 0; a node pointing at itself left it. */
			st->status = FC_DIR_LOST;
			r = DIR_ENDED;
			break;
		}
		node = next;
		st->steps++;
		v = dir_visit(node, slot);
		if (v) {
			r = v;
			break;
		}
	}
	st->node = node;
	return r;
}

/* dir_chunks calls dir_chunk up to FC_DIR_CHUNKS times: a second level of loop. */
__noinline int dir_chunks(__u32 slot)
{
	int r = DIR_ON;
	__u32 j;

	for (j = 0; j < FC_DIR_CHUNKS; j++) {
		r = dir_chunk(slot);
		if (r != DIR_ON)
			break;
	}
	return r;
}

/* dir_of is the dentry of the caller's fd, or 0. */
static __always_inline struct dentry *dir_of(__s64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds, *file = 0;
	struct fdtable *fdt;

	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds) ||
	    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	return BPF_CORE_READ(file, f_path.dentry);
}

/* dir_start sets a slot up for a walk from the first child; non-zero when it cannot walk. */
static __always_inline int dir_start(struct fc_dir *st, struct dentry *dir, __u64 legacy)
{
	struct super_block *sb = BPF_CORE_READ(dir, d_sb);
	__u32 mask;

	st->runs = 0;
	st->steps = 0;
	st->dir = (__u64)dir;
	st->sb = (__u64)sb;
	st->dev = BPF_CORE_READ(sb, s_dev);
	st->magic = BPF_CORE_READ(sb, s_magic);
	if (st->magic == OVERLAYFS_SUPER_MAGIC) {
		st->status = FC_DIR_OVERLAY;
		return 1;
	}
	if (bpf_core_enum_value_exists(enum dentry_flags, DCACHE_MOUNTED)) {
		mask = bpf_core_enum_value(enum dentry_flags, DCACHE_MOUNTED) |
		       bpf_core_enum_value(enum dentry_flags, DCACHE_NEED_AUTOMOUNT) |
		       bpf_core_enum_value(enum dentry_flags, DCACHE_MANAGE_TRANSIT) |
		       bpf_core_enum_value(enum dentry_flags, DCACHE_OP_REVALIDATE) |
		       bpf_core_enum_value(enum dentry_flags, DCACHE_OP_WEAK_REVALIDATE);
	} else if (legacy) {
		mask = FC_DCACHE_MANAGED_OLD | FC_DCACHE_REVALIDATE;
	} else {
		/* Repacked (6.15+) yet no enum: which bit says "mount point" is unknown. */
		st->status = FC_DIR_LAYOUT;
		return 1;
	}
	st->mask = mask;
	if (bpf_core_field_exists(struct dentry, d_children)) {
		st->off = bpf_core_field_offset(struct dentry, d_sib);
		st->head = (__u64)dir + bpf_core_field_offset(struct dentry, d_children);
		st->end = 0;
	} else {
		st->off = bpf_core_field_offset(struct dentry___subdirs, d_child);
		st->head = (__u64)dir + bpf_core_field_offset(struct dentry___subdirs, d_subdirs);
		st->end = st->head;
	}
	st->node = st->head;
	return 0;
}

/*
 * dir_resumable says whether the cursor is still where the last run left
 * it: a child of the directory, on the list (the word its back link names
 * points back at it: the previous node's next, or the head's first).
 */
static __always_inline int dir_resumable(struct fc_dir *st, struct dentry *dir)
{
	struct dentry *child, *parent = 0;
	__u64 node = st->node, back = 0, to = 0;

	if (st->dir != (__u64)dir || st->status != FC_DIR_MORE)
		return 0;
	if (node == st->head)
		return 1; /* pinned by the caller's fd */
	child = (void *)node - st->off;
	if (bpf_core_read(&parent, sizeof(parent), &child->d_parent) || (__u64)parent != st->dir)
		return 0;
	/* hlist_node.pprev and list_head.prev both follow next. */
	if (bpf_probe_read_kernel(&back, sizeof(back), (void *)(node + 8)) || !back)
		return 0;
	if (bpf_probe_read_kernel(&to, sizeof(to), (void *)back) || to != node)
		return 0;
	return 1;
}

SEC("raw_tp")
int walk_dir(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 slot = ctx->args[FC_DIR_ARG_SLOT], j;
	__u64 resume = ctx->args[FC_DIR_ARG_RESUME];
	struct dentry *dir;
	struct fc_dir *st;
	int r = DIR_ON;

	st = bpf_map_lookup_elem(&dir_state, &slot);
	if (!st)
		return 1;
	st->count = 0;
	dir = dir_of(ctx->args[FC_DIR_ARG_FD]);
	if (!dir) {
		st->status = FC_DIR_NO_FILE;
		return 0;
	}
	if (!resume) {
		if (dir_start(st, dir, ctx->args[FC_DIR_ARG_LEGACY]))
			return 0;
	} else if (!dir_resumable(st, dir)) {
		st->status = FC_DIR_LOST;
		return 0;
	}
	st->runs++;
	for (j = 0; j < FC_DIR_GROUPS; j++) {
		r = dir_chunks(slot);
		if (r != DIR_ON)
			break;
	}
	if (r < 0)
		return 1;
	if (r == DIR_ON)
		st->status = FC_DIR_MORE;
	return 0;
}
