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

struct fc_result {
	__u64 nrpages; /* file->f_mapping->nrpages: pages in the page cache */
	__u64 size;    /* file->f_mapping->host->i_size, in bytes */
	__u64 ino;     /* file->f_inode->i_ino: what the fd resolved to */
	__u64 magic;   /* file->f_inode->i_sb->s_magic: the filesystem type */
	__u32 dev;     /* file->f_inode->i_sb->s_dev, kernel dev_t encoding */
	__u32 mode;    /* file->f_inode->i_mode */
	__u32 status;  /* FC_OK or why the slot has no figure */
	__u32 nlink;   /* file->f_inode->i_nlink: hard links to count once */
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

#endif /* FILECACHE_H */
