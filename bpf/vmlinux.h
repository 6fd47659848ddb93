/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel types filecache.bpf.c reads, trimmed by hand from
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c
 * of Linux 6.18 (x86_64). Members that newer kernels moved into anonymous
 * unions or structs (dentry.d_name, qstr.len, inode.i_dentry) are declared
 * flat: libbpf finds them by name. Only names and types matter: every struct carries
 * preserve_access_index, so libbpf relocates each field access against the
 * running kernel's BTF (nrpages sits at offset 128 on 6.1 and 88 on 6.18).
 * Regenerate the full header with `make vmlinux-full` to compare.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

typedef __u32 dev_t;
typedef __u16 umode_t;
typedef long long loff_t;

enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
};

enum {
	BPF_ANY = 0,
};

enum {
	BPF_F_MMAPABLE = 1024,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};

struct hlist_node {
	struct hlist_node *next;
	struct hlist_node **pprev;
};

struct hlist_head {
	struct hlist_node *first;
};

struct hlist_bl_node {
	struct hlist_bl_node *next;
	struct hlist_bl_node **pprev;
};

struct dentry;
struct inode;
struct address_space;

/* bd_inode until Linux 6.9, bd_mapping from 6.10: the program asks which. */
struct block_device {
	struct inode *bd_inode;
	struct address_space *bd_mapping;
};

struct super_block {
	dev_t s_dev;
	unsigned long s_magic;
	struct dentry *s_root;
	struct list_head s_inodes;
	struct block_device *s_bdev;
};

struct qstr {
	__u32 len;
	const unsigned char *name;
};

/*
 * d_alias sits in an anonymous union from Linux 7.x on, and in one named
 * d_u before: the ___old flavour names the older layout, and the program
 * asks which one the kernel has.
 */
struct dentry {
	struct hlist_bl_node d_hash;
	struct dentry *d_parent;
	struct qstr d_name;
	struct hlist_node d_alias;
};

struct dentry___old {
	union {
		struct hlist_node d_alias;
	} d_u;
};

struct inode;

struct address_space {
	struct inode *host;
	unsigned long nrpages;
};

struct inode {
	umode_t i_mode;
	unsigned int i_nlink;
	struct super_block *i_sb;
	struct address_space *i_mapping;
	unsigned long i_ino;
	dev_t i_rdev;
	loff_t i_size;
	__u32 i_generation;
	struct list_head i_sb_list;
	struct hlist_head i_dentry;
	struct address_space i_data;
};

struct file {
	struct inode *f_inode;
	struct address_space *f_mapping;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	struct files_struct *files;
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
