/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record layout shared by filecache.bpf.c and the Go decoder in this
 * directory (record.go). Fixed-width fields, largest first, no implicit
 * padding: the Go side decodes the bytes with the same offsets, and a test in
 * cgo/ compares both against this header.
 */
#ifndef FILECACHE_H
#define FILECACHE_H

/*
 * fds answered by one test run of the bpf_loop program. User space opens at
 * most 40 files at a time (their fds must stay inside the 64-slot fd table
 * a process starts with), and both maps are copied whole on every batch.
 */
#define FC_BATCH 64
/* fds answered by one run of the bounded-loop programs (kernels < 5.17). */
#define FC_STEP 64

/* fc_result.status */
#define FC_OK 0         /* every field read */
#define FC_NO_FILE 1    /* the fd is not open in the caller's fd table */
#define FC_NO_MAPPING 2 /* the file has no address_space */
#define FC_FAULT 3      /* a kernel read failed (a lost race): no figure */
#define FC_UNSET 0xffffffffu /* the program never reached this slot */
#define FC_NO_OVL 6     /* overlayfs, and no overlayfs BTF says where the file's pages are */

/* fc_result.layer and fc_pg_file.layer: where an overlayfs file's pages are */
#define FC_LAYER_NONE 0  /* not an overlayfs file */
#define FC_LAYER_UPPER 1 /* the upper file (copied up) */
#define FC_LAYER_LOWER 2 /* a lower file */

struct fc_result {
	__u64 nrpages; /* file->f_mapping->nrpages: pages in the page cache */
	__u64 size;    /* file->f_mapping->host->i_size, in bytes */
	__u64 ino;     /* file->f_inode->i_ino: what the fd resolved to */
	__u64 magic;   /* file->f_inode->i_sb->s_magic: the filesystem type */
	__u32 dev;     /* file->f_inode->i_sb->s_dev, kernel dev_t encoding */
	__u32 mode;    /* file->f_inode->i_mode */
	__u32 status;  /* FC_OK or why the slot has no figure */
	__u32 nlink;   /* file->f_inode->i_nlink: hard links to count once */
	/* An overlayfs file: the inode its pages are cached under (nrpages and size are its). */
	__u64 real_ino;
	__u32 real_dev;
	__u32 layer;   /* FC_LAYER_* */
};

/* The parameter map's single value: the fds of one batch. */
struct fc_params {
	__s32 fds[FC_BATCH];
	__u32 count;   /* slots of fds[] in use */
	__u32 start;   /* first slot for query_bounded and query_attached */
	__u32 tid;     /* query_attached: the only thread it answers */
	__u32 trigger; /* query_attached: the syscall number that asks */
};

/* The result map's single value: results[i] answers fds[i]. */
struct fc_results {
	struct fc_result results[FC_BATCH];
};

/*
 * The superblock walk (walk_sb): one test run follows a filesystem's inode
 * list (sb->s_inodes) with bpf_loop, sums every inode's page count, and
 * returns a record, path included, for the inodes user space asks about.
 */
#define FC_WALK_CAP 4096 /* records one run can return (the records map) */
#define FC_DEPTH 32      /* path components a record holds, leaf first */
#define FC_PATH 944      /* bytes of path components a record holds */
#define FC_TOPK 512      /* the largest want: page counts the walk's heap keeps */

/* fc_walk_params.flags */
#define FC_WALK_MAPPING 1 /* walk the superblock of fd's f_mapping->host (a block device's) */
#define FC_WALK_BDEV 2    /* walk the block devices' superblock, reached from fd's filesystem's device */

/* fc_walk.status */
#define FC_WALK_DONE 0    /* back at the list head: every inode visited */
#define FC_WALK_LOST 1    /* an inode left the list under the walk: partial */
#define FC_WALK_STEPS 2   /* max_steps reached first: partial */
#define FC_WALK_NO_FILE 3 /* params.fd is not open in the caller */
#define FC_WALK_MORE 4    /* the bounded walk: the run took its steps; run again to go on */
#define FC_WALK_UNSET 0xffffffffu

/* fc_inode.flags */
#define FC_IN_NO_DENTRY 1    /* no name in the dentry cache */
#define FC_IN_UNHASHED 2     /* its name was unlinked: deleted, still open or mapped */
#define FC_IN_TRUNCATED 4    /* deeper than FC_DEPTH or longer than FC_PATH: the leaf end only */
#define FC_IN_DISCONNECTED 8 /* the names end at a dentry that is not the root */
#define FC_IN_FAULT 16       /* a kernel read of its names failed */

struct fc_walk_params {
	__u64 min_pages; /* inodes with fewer pages are not returned */
	__u64 skip;      /* returnable inodes to pass over first (paging) */
	__u64 max_steps; /* list steps at most */
	__u32 want;      /* 1..FC_TOPK: return only inodes that can be among the want largest */
	__u32 cap;       /* records to return at most (<= FC_WALK_CAP) */
	__s32 fd;        /* an fd of the caller on the filesystem */
	__u32 flags;     /* FC_WALK_* */
	__u32 run_steps; /* walk_sb_bounded: list steps one run takes at most (0: FC_RUN_STEPS) */
	__u32 pad;
};

/* The walk's summary: the single value of the walk map. */
struct fc_walk {
	__u64 inodes;   /* inodes visited */
	__u64 pages;    /* their page counts summed */
	__u64 cached;   /* inodes with at least one page */
	__u64 matched;  /* inodes that passed min_pages and, with want, the heap */
	__u64 emitted;  /* records written */
	__u64 magic;    /* sb->s_magic */
	__u64 dropped;  /* matched inodes not returned: cap reached */
	/* With want: a min-heap of the want largest page counts seen so far. */
	__u64 heap[FC_TOPK];
	__u32 dev;      /* sb->s_dev, kernel encoding */
	__u32 status;   /* FC_WALK_* */
	__u32 heapn;    /* entries of heap[] in use */
	__u32 pad;
};

/* One inode of the walk: a value of the records map. */
struct fc_inode {
	__u64 nrpages;
	__u64 size;  /* i_size */
	__u64 ino;
	__u32 mode;
	__u32 nlink;
	__u32 rdev;  /* i_rdev: which block device, for the bdev filesystem */
	__u32 flags; /* FC_IN_* */
	__u16 depth; /* components in lens[] */
	__u16 pathlen;    /* bytes of path[] in use */
	__u32 pad;
	__u8 lens[FC_DEPTH]; /* component lengths, leaf first */
	char path[FC_PATH];  /* the components' bytes, leaf first, no separators */
};

/*
 * The bounded walk (walk_sb_bounded), for kernels without bpf_loop (< 5.17):
 * the same walk cut into test runs of at most FC_RUN_STEPS list steps, in
 * nested loops the verifier of Linux 5.10 accepts. Each run resumes after the
 * inode the previous one stopped at (the cursor), once it has checked that
 * the cursor is still that inode on that list; fc_walk and the records carry
 * over from run to run, so the runs together answer what one walk_sb run
 * does. fc_walk.status is FC_WALK_MORE after a run that stopped at its step
 * bound.
 */
#define FC_CHUNK 16  /* list steps of one call of walk_chunk, a loop of its own */
#define FC_CHUNKS 32 /* calls of walk_chunk one call of walk_chunks makes at most */
#define FC_GROUPS 32 /* calls of walk_chunks one run makes at most */
#define FC_RUN_STEPS (FC_CHUNK * FC_CHUNKS * FC_GROUPS)

/* fc_cursor.refused: why a run did not resume from the cursor (the walk is then FC_WALK_LOST) */
#define FC_CUR_OK 0         /* resumed (or nothing to resume) */
#define FC_CUR_FAULT 1      /* a read of the cursor or a neighbour failed */
#define FC_CUR_UNLINKED 2   /* the cursor left the list: it points at itself */
#define FC_CUR_SB 3         /* not an inode of the superblock walked */
#define FC_CUR_INODE 4      /* another inode number or generation */
#define FC_CUR_NEIGHBOURS 5 /* its neighbours are not the recorded ones, or do not point back at it */
#define FC_CUR_SUPER 6      /* the anchor led to another superblock than the first run's */

/* One place on the list: an inode's i_sb_list, or the head (&sb->s_inodes, ino and gen 0). */
struct fc_link {
	__u64 addr; /* the list_head's kernel address */
	__u64 ino;  /* i_ino */
	__u32 gen;  /* i_generation */
	__u32 pad;
};

/* The bounded walk's cursor: the single value of the walk_cursor map. */
struct fc_cursor {
	struct fc_link node; /* the last inode visited */
	struct fc_link prev; /* its neighbours when the run stopped */
	struct fc_link next;
	__u64 sb;      /* the superblock walked (kernel address) */
	__u64 steps;   /* list steps of every run of this walk */
	__u32 runs;    /* runs of this walk so far */
	__u32 refused; /* FC_CUR_* */
	__u32 left;    /* list steps this run may still take */
	__u32 pad;
};

/*
 * The page walk (walk_pages, --by-cgroup): for each fd of a batch, a pass
 * over the file's page-cache tree (mapping->i_pages) that counts its pages
 * by the memory cgroup each is charged to. Its cursor (file, page index) is
 * kept in the state map, so a run that ends early (steps or records used
 * up) is continued by the next run of the same batch.
 */
#define FC_PG_CAP 4096   /* records one run can return (the pg_records map) */
#define FC_PG_STEPS 2048 /* steps of one run of walk_pages_bounded (no bpf_loop) */

/* fc_pg_state.status */
#define FC_PG_DONE 0  /* every file of the batch walked */
#define FC_PG_MORE 1  /* steps or record room ran out: run again */
#define FC_PG_UNSET 0xffffffffu

/* fc_pg_file.status, besides FC_OK, FC_NO_FILE, FC_NO_MAPPING, FC_FAULT and FC_NO_OVL */
#define FC_PG_RACE 4     /* the tree changed under the walk: walk the file again */
#define FC_PG_NO_MEMCG 5 /* a folio's memory cgroup is kept where this program does not look */
#define FC_PG_LAYOUT 7   /* the page-cache tree's nodes are not of 64 slots */

/* fc_pg_params.flags */
#define FC_PG_RANGES 1 /* snapshot: a record is a run of consecutive cached pages, whatever their cgroup */

struct fc_pg_params {
	__s32 fds[FC_BATCH];
	__u32 count;     /* slots of fds[] in use */
	__u32 cap;       /* records a run may write (<= FC_PG_CAP) */
	__u64 max_steps; /* steps of a walk_pages run (bpf_loop iterations) */
	__u32 flags;     /* FC_PG_* flags */
	__u32 pad;
};

/* One file of the batch. */
struct fc_pg_file {
	__u64 nrpages;     /* mapping->nrpages when its walk began */
	__u64 nrpages_end; /* ... and when it ended */
	__u64 walked;      /* pages the walk found in the tree */
	__u64 size;        /* the mapping's host's i_size */
	__u64 ino;         /* the fd's inode */
	__u64 magic;
	__u64 real_ino;    /* overlayfs: the inode holding the pages */
	__u32 dev;
	__u32 mode;
	__u32 nlink;
	__u32 status;      /* FC_OK or why the file has no figures */
	__u32 real_dev;
	__u32 layer;       /* FC_LAYER_* */
};

/*
 * A run of pages of one file charged to one memory cgroup: a value of
 * pg_records. With FC_PG_RANGES, a run of consecutive cached pages
 * (memcg and id 0).
 */
struct fc_pg_rec {
	__u64 memcg; /* the struct mem_cgroup (0: charged to none) */
	__u64 id;    /* its cgroup id: the kernfs node id, its directory's inode number */
	__u64 pages;
	__u64 first; /* the page index of the run's first page */
	__u32 slot;  /* the file: fds[slot] */
	__u32 pad;
};

/* The walk's state: the single value of pg_state, zeroed by user space for each batch. */
struct fc_pg_state {
	__u64 next;      /* cursor: the next page index of files[slot] */
	__u64 steps;     /* steps of this run */
	__u64 node;      /* within a run: the tree node being read (0: descend from the head) */
	__u64 mapping;   /* within a run: files[slot]'s mapping (0: look it up) */
	__u64 cur_memcg; /* the run of pages being counted: its memory cgroup, */
	__u64 cur_pages; /* its pages */
	__u64 cur_id;    /* and the cgroup's id */
	__u32 slot;      /* cursor: the file being walked */
	__u32 off;       /* node's slot being read */
	__u32 shift;     /* node's shift */
	__u32 nrec;      /* records written by this run */
	__u32 status;    /* FC_PG_* */
	__u32 started;   /* files[slot]'s figures are read */
	struct fc_pg_file files[FC_BATCH];
	/* Within a run: the slots of node slots_of, read in one go. */
	__u64 slots_of;
	__u64 slots[64];
	__u64 cur_first; /* the run of pages being counted: its first page index */
};

/*
 * The cgroup walk (walk_cg, filecache top --by-cgroup and --cgroup): walk_sb's
 * walk of a superblock's inode list, where each inode with pages has its
 * page-cache tree walked as the page walk walks a file's, every page counted
 * for the memory cgroup it is charged to. It uses walk_sb's maps (params,
 * sums, heap, records, and the bounded walk's cursor, for every run after the
 * first) and these: each cgroup's pages in cg_sums, the split of each inode
 * returned in cg_splits (at its record's index), the walk's own state in
 * cg_state. A run takes at most FC_CG_LOOP steps (bpf_loop) or FC_CG_STEPS
 * (bounded loops); a step is one inode of the list or one slot of a tree.
 * The walk resumes between runs from the cursor, checked as walk_sb_bounded
 * checks it, and inside an inode's tree from its page index.
 */
#define FC_CG_PAIRS 16        /* cgroups a returned inode's split names; the rest is other */
#define FC_CG_CHUNK 256       /* steps of one call of cg_chunk (walk_cg_bounded) */
#define FC_CG_CHUNKS 64       /* calls of cg_chunk one bounded run makes at most */
#define FC_CG_STEPS (FC_CG_CHUNK * FC_CG_CHUNKS)
#define FC_CG_LOOP (1 << 23)  /* steps of one walk_cg run at most: bpf_loop's bound */
#define FC_CG_SUMS 8192       /* cgroups cg_sums holds (user space may size it) */

/* fc_walk_params.flags of walk_cg */
#define FC_WALK_FILTER 4 /* count only pages charged to the cgroups cg_sums marks allowed */
#define FC_WALK_PAIRS 8  /* rank an inode by its largest share of one cgroup, not by its sum */

/* fc_walk.status of walk_cg */
#define FC_WALK_NO_MEMCG 5 /* a folio's memory cgroup is kept where this program does not look */
#define FC_WALK_LAYOUT 6   /* the page-cache tree's nodes are not of 64 slots */

/* fc_cg_split.flags */
#define FC_CGS_CHANGED 1 /* the inode's tree changed under the walk: the split is what it saw */

/*
 * A value of cg_sums, keyed by cgroup id: its pages over the walk, and
 * (written by user space before the walk) whether its pages count under
 * FC_WALK_FILTER.
 */
struct fc_cg_sum {
	__u64 pages;
	__u32 allowed;
	__u32 pad;
};

struct fc_cg_pair {
	__u64 id;    /* cgroup id (0: charged to none) */
	__u64 pages;
};

/* The split of a returned inode: a value of cg_splits, at its record's index. */
struct fc_cg_split {
	__u64 walked; /* pages found in its tree, of every cgroup */
	__u64 other;  /* pages of counted cgroups past pairs[] */
	__u32 npairs; /* entries of pairs[] in use, in the order met */
	__u32 flags;  /* FC_CGS_* */
	struct fc_cg_pair pairs[FC_CG_PAIRS];
};

/* The cgroup walk's state: the single value of cg_state, zeroed by user space for each walk. */
struct fc_cg_state {
	__u64 inode;     /* the inode whose tree is being walked (0: between inodes) */
	__u64 mapping;   /* its i_data */
	__u64 next;      /* its next page index */
	__u64 node;      /* within a run: the tree node being read (0: descend from the head) */
	__u64 slots_of;  /* within a run: the node slots[] holds */
	__u64 run_memcg; /* within a run: the run of pages of one cgroup being counted, */
	__u64 run_id;    /* its cgroup's id */
	__u64 run_pages; /* and pages */
	__u64 counted;   /* the inode's pages of counted cgroups (all, or the allowed ones') */
	__u64 walked;    /* the walk: pages found in every inode's tree */
	__u64 changed;   /* inodes whose tree changed under the walk */
	__u64 unsummed;  /* pages of cgroups cg_sums had no room for */
	__u32 off;       /* node's slot being read */
	__u32 shift;     /* node's shift */
	__u32 run_counted; /* the run's cgroup counts */
	__u32 pad;
	struct fc_cg_split split; /* the inode being walked */
	__u64 slots[64];
};


/*
 * The dentry walk (walk_dir): a directory's regular files read from its
 * own dentry's list of children (d_children, or d_subdirs before Linux 6.8)
 * in one test run, with no open per file. User space matches each child to
 * the directory listing by inode number. A run takes FC_DIR_STEPS list
 * steps at most and leaves a cursor on the last child it visited; the next
 * run resumes there once it has checked that child is still on the list.
 * Several walks may run at once, each in its own slot of both maps.
 */
#define FC_DIR_SLOTS 4   /* walks that may run at once (slots of dir_state) */
#define FC_DIR_CHUNK 16  /* list steps of one call of dir_chunk */
#define FC_DIR_CHUNKS 32 /* calls of dir_chunk one call of dir_chunks makes */
#define FC_DIR_GROUPS 32 /* calls of dir_chunks one run makes */
#define FC_DIR_STEPS (FC_DIR_CHUNK * FC_DIR_CHUNKS * FC_DIR_GROUPS)
#define FC_DIR_CAP FC_DIR_STEPS /* records a slot holds: one a step at most */

/* The test run's context (struct bpf_raw_tracepoint_args.args[]). */
#define FC_DIR_ARG_FD 0     /* an fd of the caller on the directory */
#define FC_DIR_ARG_SLOT 1   /* the slot: < FC_DIR_SLOTS */
#define FC_DIR_ARG_RESUME 2 /* 0: from the first child; 1: after the cursor */
#define FC_DIR_ARG_LEGACY 3 /* 1: no enum dentry_flags in BTF, and the kernel is older than 6.15 */
#define FC_DIR_ARGS 4

/* fc_dir.status */
#define FC_DIR_DONE 0    /* back at the end of the list: every child visited */
#define FC_DIR_MORE 1    /* the run took its steps: run again with resume */
#define FC_DIR_LOST 2    /* a child left the directory, or the cursor is not where it was: stop */
#define FC_DIR_NO_FILE 3 /* the fd is not open in the caller */
#define FC_DIR_LAYOUT 4  /* this kernel's dentry flags are unknown: nothing can be trusted */
#define FC_DIR_OVERLAY 5 /* overlayfs: its inodes' own mappings stay empty, the pages are elsewhere */
#define FC_DIR_UNSET 0xffffffffu

/* One regular file among the children: a value of dir_records. */
struct fc_child {
	__u64 ino;     /* i_ino */
	__u64 size;    /* i_mapping->host->i_size */
	__u64 nrpages; /* i_mapping->nrpages */
	__u32 nlink;   /* i_nlink */
	__u32 mode;    /* i_mode */
};

/* A slot's walk: a value of dir_state. User space reads the first fields. */
struct fc_dir {
	__u64 magic;   /* the directory's sb->s_magic */
	__u64 steps;   /* list steps of every run of this walk */
	__u32 dev;     /* its sb->s_dev, kernel encoding */
	__u32 status;  /* FC_DIR_* */
	__u32 count;   /* records this run wrote to the slot */
	__u32 runs;    /* runs of this walk */
	/* The program's own, carried from run to run: */
	__u64 dir;     /* the directory's dentry */
	__u64 sb;      /* its superblock */
	__u64 head;    /* &dir->d_children (or &dir->d_subdirs) */
	__u64 node;    /* cursor: the list node last visited (at first, the head) */
	__u64 end;     /* the list's end: 0 (hlist) or the head (list) */
	__u64 off;     /* offset of the list node in a child dentry */
	__u32 mask;    /* d_flags that rule a child out */
	__u32 pad;
};

#endif /* FILECACHE_H */
