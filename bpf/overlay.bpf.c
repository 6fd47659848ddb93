//go:build ignore
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where an overlayfs file's pages are. An overlay inode's own mapping stays
 * empty: reads and mmaps go to the real file, the upper one once copied up
 * (with its data), else the lower one, and that file's mapping holds the
 * pages. Included by filecache.bpf.c; the query programs and the page walk
 * both ask it, and the superblock walk can.
 */

#define OVERLAYFS_SUPER_MAGIC 0x794c7630

/* Besides a real inode's address with its layer in the low bits: */
#define FC_REAL_NO_BTF 0 /* no BTF of overlayfs: its layout is unknown */
#define FC_REAL_FAULT 1  /* a read failed, or no layer holds the file */

/*
 * fc_real_inode returns the inode holding the pages of the overlayfs inode
 * at inodep, or'ed with FC_LAYER_UPPER or FC_LAYER_LOWER (inodes are
 * aligned far beyond that), or FC_REAL_NO_BTF or FC_REAL_FAULT. It follows
 * ovl_inode_realdata(): the upper inode if the file was copied up with its
 * data (a metacopy copy-up leaves the data below), else the last of its
 * lower stack (a data-only layer under a metacopy file; for any other file
 * the one lower entry). Global, so the verifier checks it once.
 */
__noinline __u64 fc_real_inode(__u64 inodep)
{
	struct ovl_inode *oi;
	struct dentry *upper, *d = 0;
	struct inode *real = 0, *lower = 0;
	unsigned long flags;
	__u32 n;

	if (!bpf_core_field_exists(struct ovl_inode, vfs_inode) ||
	    !bpf_core_field_exists(struct ovl_inode, __upperdentry) ||
	    !bpf_core_enum_value_exists(enum ovl_inode_flag, OVL_UPPERDATA))
		return FC_REAL_NO_BTF;
	oi = (void *)inodep - bpf_core_field_offset(struct ovl_inode, vfs_inode);

	if (bpf_core_field_exists(struct ovl_inode, oe)) {
		/* 6.5+: the lower stack; the data in its last entry. */
		struct ovl_entry *oe = BPF_CORE_READ(oi, oe);

		n = oe ? BPF_CORE_READ(oe, __numlower) : 0;
		if (n > 0 && n <= 500) {
			/* ovl_path ends with dentry: the stride is dentry's end. */
			__u64 stride = bpf_core_field_offset(struct ovl_path, dentry) + sizeof(void *);
			void *p = (void *)oe + bpf_core_field_offset(struct ovl_entry, __lowerstack) +
				  (n - 1) * stride + bpf_core_field_offset(struct ovl_path, dentry);

			if (bpf_probe_read_kernel(&d, sizeof(d), p))
				return FC_REAL_FAULT;
			lower = d ? BPF_CORE_READ(d, d_inode) : 0;
		}
	} else if (bpf_core_field_exists(struct ovl_inode, lowerpath)) {
		/* 5.19 - 6.4: the lower path, or a metacopy file's data inode. */
		if (bpf_core_field_exists(struct ovl_inode, lowerdata))
			lower = BPF_CORE_READ(oi, lowerdata);
		if (!lower) {
			d = BPF_CORE_READ(oi, lowerpath.dentry);
			lower = d ? BPF_CORE_READ(d, d_inode) : 0;
		}
	} else if (bpf_core_field_exists(struct ovl_inode, lower)) {
		/* Before 5.19: the lower inode, or a metacopy file's data inode. */
		if (bpf_core_field_exists(struct ovl_inode, lowerdata))
			lower = BPF_CORE_READ(oi, lowerdata);
		if (!lower)
			lower = BPF_CORE_READ(oi, lower);
	} else {
		return FC_REAL_NO_BTF;
	}

	upper = BPF_CORE_READ(oi, __upperdentry);
	if (upper) {
		/* ovl_has_upperdata(): without a lower file, the upper has it all. */
		flags = BPF_CORE_READ(oi, flags);
		if (!lower || (flags >> bpf_core_enum_value(enum ovl_inode_flag, OVL_UPPERDATA)) & 1) {
			real = BPF_CORE_READ(upper, d_inode);
			return real ? (__u64)real | FC_LAYER_UPPER : FC_REAL_FAULT;
		}
	}
	return lower ? (__u64)lower | FC_LAYER_LOWER : FC_REAL_FAULT;
}
