// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fast path: `filecache FILE...`, the everyday question about a few
 * files, answered before the Go runtime starts, as a constructor that glibc
 * runs ahead of main. Starting Go (threads, heap, package init) and loading
 * the BPF program cost several times what the question does; vmtouch
 * answers it in under a millisecond, and so must filecache.
 *
 * It answers only what it can answer exactly as filecache's Go path would
 * print it, and otherwise returns, having printed nothing, for the Go path
 * to do everything (it reads, changes and leaves behind nothing):
 *   - the arguments are 1 to FC_FAST_MAX paths and nothing else: no option,
 *     no "--", no command name, none empty, each printable ASCII (a path
 *     the table would quote goes to the Go path);
 *   - the bpf engine could load here (root, or CAP_BPF and CAP_PERFMON, or
 *     CAP_SYS_ADMIN; kernel BTF; no seccomp filter, which might refuse
 *     bpf(2); no lockdown in confidentiality mode), so the Go path would
 *     print no note about falling back: the page count it would read,
 *     mapping->nrpages, is what cachestat(2) counts over the whole file;
 *   - every path is a regular file (symlinks followed) on ext2/3/4, XFS,
 *     btrfs, F2FS or tmpfs, not DAX, and cachestat(2) (Linux >= 6.5)
 *     answers it.
 * Each file is opened with O_PATH (which reads nothing, never blocks and has
 * no side effects), checked, and only then opened read-only through
 * /proc/self/fd (the very inode checked) for cachestat(2): FIFOs, devices,
 * FUSE, network and other filesystems are never opened for reading here.
 * The table is the Go path's (report.Table): the same columns, numbers
 * (units.Human, units.Percent) and alignment (text/tabwriter, right-aligned,
 * padding 2); the integration suite holds the two to the same bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FC_FAST_MAX 64

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct fc_cachestat_range {
	uint64_t off, len;
};

struct fc_cachestat {
	uint64_t cache, dirty, writeback, evicted, recently_evicted;
};

/* fc_human is units.Human: 0B, 4K, 1.2M, 16G (powers of 1024). */
void fc_human(uint64_t n, char *out, size_t size)
{
	static const char units[] = "BKMGTPE";
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < (int)sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	if (u == 0) {
		snprintf(out, size, "%lluB", (unsigned long long)n);
		return;
	}
	if (v < 10) {
		char s[32];
		size_t l;

		snprintf(s, sizeof(s), "%.1f", v);
		l = strlen(s);
		if (l >= 2 && strcmp(s + l - 2, ".0") == 0)
			s[l - 2] = 0;
		snprintf(out, size, "%s%c", s, units[u]);
		return;
	}
	snprintf(out, size, "%.0f%c", v, units[u]);
}

/* fc_percent is units.Percent printed as the PERCENT column: "%.1f%%". */
void fc_percent(uint64_t cached, uint64_t total, char *out, size_t size)
{
	double p = 0;

	if (total)
		p = round((double)cached * 10000 / (double)total) / 100;
	snprintf(out, size, "%.1f%%", p);
}

static const char *const commands[] = {"query", "doctor", "touch", "evict", "lock", "top", "serve", "help", 0};

/* plain: a path the table shows as it is, and no option or command. */
static int plain(const char *a, int first)
{
	const unsigned char *p;

	if (!*a || *a == '-')
		return 0;
	for (p = (const unsigned char *)a; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	if (first)
		for (int i = 0; commands[i]; i++)
			if (strcmp(a, commands[i]) == 0)
				return 0;
	return 1;
}

/* privileged: what pagecache.CheckBPF asks, and nothing that would refuse bpf(2). */
static int privileged(void)
{
	char buf[4096], *line;
	unsigned long long eff = 0;
	int fd, n, have_caps = 0, seccomp = -1;
	struct stat st;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : 0) {
		if (strncmp(line, "CapEff:", 7) == 0)
			have_caps = sscanf(line + 7, "%llx", &eff) == 1;
		else if (strncmp(line, "Seccomp:", 8) == 0)
			sscanf(line + 8, "%d", &seccomp);
	}
	/* CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39 */
	if (!have_caps || !((eff >> 21 & 1) || ((eff >> 38 & 1) && (eff >> 39 & 1))))
		return 0;
	if (seccomp != 0)
		return 0;
	if (stat("/sys/kernel/btf/vmlinux", &st))
		return 0;
	fd = open("/sys/kernel/security/lockdown", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (strstr(buf, "[confidentiality]"))
				return 0;
		}
	}
	return 1;
}

static int local_fs(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53:     /* ext2, ext3, ext4 */
	case 0x58465342: /* XFS */
	case 0x9123683E: /* btrfs */
	case 0xF2F52010: /* F2FS */
	case 0x01021994: /* tmpfs */
		return 1;
	}
	return 0;
}

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

struct fc_file {
	uint64_t cached, pages, size;
};

/* measure reads one file as the Go path would show it; 0 when it cannot. */
static int measure(const char *path, struct fc_file *f)
{
	struct statx a, b;
	struct statfs sf;
	struct fc_cachestat_range r = {0, 0};
	struct fc_cachestat cs;
	char proc[64];
	int pfd, fd, ok = 0;
	long page = sysconf(_SC_PAGESIZE);

	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return 0;
	if (statx(pfd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_SIZE, &a) ||
	    !S_ISREG(a.stx_mode) || (a.stx_attributes & STATX_ATTR_DAX) ||
	    fstatfs(pfd, &sf) || !local_fs(sf.f_type))
		goto out;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (!statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_SIZE, &b) &&
	    b.stx_ino == a.stx_ino && b.stx_dev_major == a.stx_dev_major && b.stx_dev_minor == a.stx_dev_minor &&
	    S_ISREG(b.stx_mode) && syscall(__NR_cachestat, fd, &r, &cs, 0) == 0) {
		f->cached = cs.cache;
		f->size = b.stx_size;
		f->pages = (b.stx_size + page - 1) / page;
		ok = 1;
	}
	close(fd);
out:
	close(pfd);
	return ok;
}

struct cells {
	char c[4][48];
};

static void cells_of(struct cells *x, uint64_t cached, uint64_t pages, uint64_t size, long page)
{
	fc_human(cached * page, x->c[0], sizeof(x->c[0]));
	snprintf(x->c[1], sizeof(x->c[1]), "%llu/%llu", (unsigned long long)cached, (unsigned long long)pages);
	fc_human(size, x->c[2], sizeof(x->c[2]));
	fc_percent(cached, pages, x->c[3], sizeof(x->c[3]));
}

/* put appends s to the output buffer; 0 when it is full. */
static int put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n > cap)
		return 0;
	memcpy(buf + *len, s, n);
	*len += n;
	return 1;
}

/*
 * fc_table lays out the Go path's table for n files (n >= 1, names[i]
 * their paths) into buf; returns its length, or 0 when buf is too small.
 */
size_t fc_table(int n, const char *const *names, const uint64_t *cached, const uint64_t *pages, const uint64_t *sizes,
		long page, char *buf, size_t cap)
{
	static struct cells rows[FC_FAST_MAX + 2];
	static const char *const head[4] = {"CACHED", "PAGES", "SIZE", "PERCENT"};
	uint64_t tc = 0, tp = 0, ts = 0;
	size_t w[4] = {0}, len = 0;
	int nrows = 0, i, j;
	char total[64];

	if (n < 1 || n > FC_FAST_MAX)
		return 0;
	for (j = 0; j < 4; j++)
		snprintf(rows[0].c[j], sizeof(rows[0].c[j]), "%s", head[j]);
	for (i = 0; i < n; i++) {
		cells_of(&rows[1 + i], cached[i], pages[i], sizes[i], page);
		tc += cached[i];
		tp += pages[i];
		ts += sizes[i];
	}
	nrows = 1 + n;
	if (n > 1)
		cells_of(&rows[nrows++], tc, tp, ts, page);
	for (i = 0; i < nrows; i++)
		for (j = 0; j < 4; j++)
			if (strlen(rows[i].c[j]) > w[j])
				w[j] = strlen(rows[i].c[j]);
	snprintf(total, sizeof(total), "total (%d files)", n);
	for (i = 0; i < nrows; i++) {
		const char *name = i == 0 ? "PATH" : i <= n ? names[i - 1] : total;

		for (j = 0; j < 4; j++) {
			size_t l = strlen(rows[i].c[j]);

			/* tabwriter, AlignRight, padding 2: width + 2, text on the right */
			for (size_t k = l; k < w[j] + 2; k++)
				if (!put(buf, cap, &len, " ", 1))
					return 0;
			if (!put(buf, cap, &len, rows[i].c[j], l))
				return 0;
		}
		if (!put(buf, cap, &len, "  ", 2) || !put(buf, cap, &len, name, strlen(name)) ||
		    !put(buf, cap, &len, "\n", 1))
			return 0;
	}
	return len;
}

static char out[FC_FAST_MAX * (4096 + 128) + 512];

__attribute__((constructor)) static void fc_fastpath(int argc, char **argv, char **envp)
{
	uint64_t cached[FC_FAST_MAX], pages[FC_FAST_MAX], sizes[FC_FAST_MAX];
	struct fc_file f;
	size_t len, done = 0;
	int i, n = argc - 1;

	(void)envp;
	if (n < 1 || n > FC_FAST_MAX || !argv)
		return;
	for (i = 1; i < argc; i++)
		if (!argv[i] || !plain(argv[i], i == 1))
			return;
	if (!privileged())
		return;
	for (i = 0; i < n; i++) {
		if (!measure(argv[i + 1], &f))
			return;
		cached[i] = f.cached;
		pages[i] = f.pages;
		sizes[i] = f.size;
	}
	len = fc_table(n, (const char *const *)argv + 1, cached, pages, sizes, sysconf(_SC_PAGESIZE), out, sizeof(out));
	if (!len)
		return;
	while (done < len) {
		ssize_t w = write(1, out + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (done == 0)
				return; /* nothing written: the Go path says what is wrong */
			dprintf(2, "filecache: write table: write /dev/stdout: %s\n", strerror(errno));
			_exit(1);
		}
		done += w;
	}
	_exit(0);
}
