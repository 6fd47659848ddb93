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
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

enum {
	BPF_F_MMAPABLE = 1024,
};

/*
 * d_flags bits: macros until Linux 6.14 (which BTF does not carry), an enum
 * from 6.15, which also repacked them (DCACHE_MOUNTED moved from 0x10000 to
 * 0x8000). Only the names matter here: the dentry walk asks the kernel's
 * BTF for the values where it has them.
 */
enum dentry_flags {
	DCACHE_OP_REVALIDATE = 4,
	DCACHE_OP_WEAK_REVALIDATE = 2048,
	DCACHE_MOUNTED = 32768,
	DCACHE_NEED_AUTOMOUNT = 65536,
	DCACHE_MANAGE_TRANSIT = 131072,
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
	unsigned int d_flags;
	struct hlist_bl_node d_hash;
	struct dentry *d_parent;
	struct qstr d_name;
	struct hlist_node d_alias;
	struct inode *d_inode;
	struct super_block *d_sb;
	/* A directory's children from Linux 6.8 (the dentry walk). */
	struct hlist_node d_sib;
	struct hlist_head d_children;
};

/* Before Linux 6.8 a directory's children were a list_head. */
struct dentry___subdirs {
	struct list_head d_child;
	struct list_head d_subdirs;
};

struct dentry___old {
	union {
		struct hlist_node d_alias;
	} d_u;
};

struct inode;

/* The page cache's tree (see the page walk below). */
struct xarray {
	void *xa_head;
};

struct address_space {
	struct inode *host;
	struct xarray i_pages;
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

struct vfsmount;

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
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

/*
 * The page walk (--by-cgroup): a page-cache tree node, and where each kernel
 * keeps the memory cgroup a folio is charged to: page->mem_cgroup until
 * 5.10, memcg_data (low bits flags) from 5.11, folio->memcg_data from 5.16;
 * from 7.x (per-node obj_cgroup, mem_cgroup_per_node.objcg) memcg_data
 * points to an obj_cgroup, whose memcg is the folio's memory cgroup.
 */
struct xa_node {
	unsigned char shift;
	unsigned char offset;
	struct xa_node *parent;
	void *slots[64];
};

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct mem_cgroup {
	struct cgroup_subsys_state css;
};

struct obj_cgroup {
	struct mem_cgroup *memcg;
};

struct mem_cgroup_per_node {
	struct obj_cgroup *objcg;
};

struct page {
	unsigned long memcg_data;
	struct mem_cgroup *mem_cgroup;
};

struct folio {
	unsigned long memcg_data;
};

/*
 * overlayfs (fs/overlayfs/ovl_entry.h), in vmlinux when built in, else in
 * the overlay module's BTF. Where a file's data lies: the upper dentry once
 * copied up (with its data: OVL_UPPERDATA), else the lower one: oe's lower
 * stack from 6.5, lowerpath from 5.19, lower before; lowerdata (until 6.4)
 * names a metacopy file's data inode.
 */
struct ovl_path {
	struct dentry *dentry;
};

struct ovl_entry {
	unsigned int __numlower;
	struct ovl_path __lowerstack[0];
};

struct ovl_inode {
	unsigned long flags;
	struct inode vfs_inode;
	struct dentry *__upperdentry;
	struct ovl_entry *oe;
	struct ovl_path lowerpath;
	struct inode *lower;
	struct inode *lowerdata;
};

enum ovl_inode_flag {
	OVL_UPPERDATA = 3,
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
