/*
 * gbench: the workloads of bench/guest-bench, run inside a nested guest
 * whose initramfs has busybox and little else (no fio, no python). Built
 * by the in-VM scenario with `gcc -O2 -static`.
 *
 *   gbench seqwrite FILE MIB BS_KIB     write MIB MiB in BS_KIB writes, fsync
 *   gbench seqread FILE BS_KIB          read FILE to its end
 *   gbench randread FILE COUNT SEED     COUNT 4 KiB preads at distinct random
 *                                       4 KiB-aligned offsets, queue depth 1,
 *                                       readahead off (POSIX_FADV_RANDOM)
 *   gbench meta DIR FILES WORKERS       FILES files split over WORKERS
 *                                       processes in one directory: create
 *                                       (O_EXCL, 512 bytes), stat, unlink;
 *                                       each phase timed across all workers
 *   gbench run NAME CMD [ARGS...]       time a command (stdout to /dev/null)
 *   gbench host WORDS...                send one line to the outer VM's agent
 *                                       (vsock CID 2, port $GB_AGENT_PORT) and
 *                                       wait for its answer
 *   gbench relay PORT CID VPORT         a minimal relay, for comparison with
 *                                       mount.vsock's: 127.0.0.1:PORT to vsock
 *                                       CID:VPORT from a privileged port, a
 *                                       process per connection, one 256 KiB
 *                                       buffer, poll/read/write (runs as
 *                                       "gb-relay": counted as relay CPU)
 *
 * Every measuring command prints one line
 *   @@gb $GB_TAG w=NAME secs=S gcpu=S relay=S [more key=value]
 * gcpu: the guest's busy CPU seconds (/proc/stat, all but idle and iowait);
 * relay: CPU seconds of mount.vsock processes (the guest's vsock relay).
 * With $GB_AGENT_PORT set, "mark <tag> begin|end" goes to the agent right
 * outside the timed part, so that the outer VM's CPU use is measured over
 * the same span.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>

static const char *tag(void)
{
	const char *t = getenv("GB_TAG");
	return t ? t : "";
}

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "gbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (errno)
		fprintf(stderr, ": %s", strerror(errno));
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/* Busy ticks of the whole guest: user nice system irq softirq steal. */
static unsigned long long guest_busy(void)
{
	char buf[512];
	unsigned long long v[8] = { 0 };
	if (read_small("/proc/stat", buf, sizeof buf) < 0)
		return 0;
	sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
	       &v[6], &v[7]);
	return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

/* utime + stime of each relay process: mount.vsock (the relay forks
 * from it) and gbench's own (gb-relay), by pid. */
#define MAX_RELAYS 64
struct relays {
	int n;
	int pid[MAX_RELAYS];
	unsigned long long ticks[MAX_RELAYS];
};

static void relay_ticks(struct relays *r)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	r->n = 0;
	if (!d)
		return;
	while ((e = readdir(d)) && r->n < MAX_RELAYS) {
		char path[300], buf[1024];
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if (read_small(path, buf, sizeof buf) < 0)
			continue;
		char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
		if (!open_paren || !close_paren ||
		    (strncmp(open_paren + 1, "mount.vsock)", 12) != 0 && strncmp(open_paren + 1, "gb-relay)", 9) != 0))
			continue;
		unsigned long long ut = 0, st = 0;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st);
		r->pid[r->n] = atoi(e->d_name);
		r->ticks[r->n] = ut + st;
		r->n++;
	}
	closedir(d);
}

/* Relay CPU between two samples: what each relay alive at the end used
 * since the first (all of it if it started since). A relay that exited in
 * between is not counted: its last ticks are gone with it. */
static unsigned long long relay_used(const struct relays *a, const struct relays *b)
{
	unsigned long long sum = 0;
	for (int i = 0; i < b->n; i++) {
		unsigned long long before = 0;
		for (int j = 0; j < a->n; j++)
			if (a->pid[j] == b->pid[i])
				before = a->ticks[j];
		if (b->ticks[i] > before)
			sum += b->ticks[i] - before;
	}
	return sum;
}

/* One request to the outer VM's agent; returns its answer line. */
static int agent(const char *line, char *answer, size_t size)
{
	const char *p = getenv("GB_AGENT_PORT");
	if (!p || !*p)
		return -1;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = atoi(p) };
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	size_t len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		close(fd);
		return -1;
	}
	size_t got = 0;
	while (got + 1 < size) {
		ssize_t n = read(fd, answer + got, size - 1 - got);
		if (n <= 0)
			break;
		got += n;
		if (memchr(answer, '\n', got))
			break;
	}
	answer[got] = 0;
	char *nl = strchr(answer, '\n');
	if (nl)
		*nl = 0;
	close(fd);
	return 0;
}

static void mark(const char *name, const char *edge)
{
	char line[512], answer[128];
	if (!getenv("GB_AGENT_PORT"))
		return;
	snprintf(line, sizeof line, "mark %s w=%s %s", tag(), name, edge);
	if (agent(line, answer, sizeof answer) < 0 || strcmp(answer, "ok") != 0)
		fprintf(stderr, "gbench: the agent did not take the mark (%s)\n", answer);
}

/* The span of one measurement: marks, clocks and CPU counters. */
struct span {
	const char *name;
	double t0, t1;
	unsigned long long g0, g1;
	struct relays r0, r1;
};

static void begin(struct span *s, const char *name)
{
	s->name = name;
	mark(name, "begin");
	relay_ticks(&s->r0);
	s->g0 = guest_busy();
	s->t0 = now();
}

static void end(struct span *s)
{
	s->t1 = now();
	s->g1 = guest_busy();
	relay_ticks(&s->r1);
	mark(s->name, "end");
}

static void report(struct span *s, const char *fmt, ...)
{
	double hz = sysconf(_SC_CLK_TCK);
	printf("@@gb %s w=%s secs=%.4f gcpu=%.2f relay=%.2f", tag(), s->name, s->t1 - s->t0, (s->g1 - s->g0) / hz,
	       relay_used(&s->r0, &s->r1) / hz);
	if (fmt) {
		va_list ap;
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	fflush(stdout);
}

static char *buffer(size_t size)
{
	char *b = NULL;
	if (posix_memalign((void **)&b, 4096, size))
		die("no memory for %zu bytes", size);
	/* Not zeros: nothing on the way may treat the data as sparse. */
	for (size_t i = 0; i < size; i++)
		b[i] = (char)(i * 131 + 7);
	return b;
}

static int seqwrite(const char *path, long mib, long bs_kib)
{
	size_t bs = bs_kib * 1024;
	long long total = mib * 1024LL * 1024LL;
	char *b = buffer(bs);
	struct span s;
	begin(&s, "seqwrite");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", path);
	for (long long done = 0; done < total;) {
		ssize_t n = write(fd, b, bs);
		if (n <= 0)
			die("write %s", path);
		done += n;
	}
	if (fsync(fd) < 0)
		die("fsync %s", path);
	if (close(fd) < 0)
		die("close %s", path);
	end(&s);
	report(&s, "bytes=%lld mibs=%.2f", total, total / 1048576.0 / (s.t1 - s.t0));
	return 0;
}

static int seqread(const char *path, long bs_kib)
{
	size_t bs = bs_kib * 1024;
	char *b = buffer(bs);
	long long total = 0;
	struct span s;
	begin(&s, "seqread");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	for (;;) {
		ssize_t n = read(fd, b, bs);
		if (n < 0)
			die("read %s", path);
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	end(&s);
	report(&s, "bytes=%lld mibs=%.2f", total, total / 1048576.0 / (s.t1 - s.t0));
	return 0;
}

static uint64_t rng_state;
static uint64_t rng(void)
{
	/* xorshift64*: reproducible offsets for a given seed on every row */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double p)
{
	long i = (long)(p / 100.0 * (n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static int randread(const char *path, long count, long seed)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("stat %s", path);
	long blocks = st.st_size / 4096;
	if (blocks < count)
		count = blocks;
	if (count < 1)
		die("%s is too small", path);
	/* Distinct blocks (a partial Fisher-Yates shuffle): no read can be
	 * served by a page an earlier read brought in. */
	long *perm = malloc(blocks * sizeof *perm);
	double *lat = malloc(count * sizeof *lat);
	if (!perm || !lat)
		die("no memory");
	for (long i = 0; i < blocks; i++)
		perm[i] = i;
	rng_state = 0x9e3779b97f4a7c15ULL ^ (uint64_t)seed;
	for (long i = 0; i < count; i++) {
		long j = i + (long)(rng() % (uint64_t)(blocks - i));
		long t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	char *b = buffer(4096);
	struct span s;
	begin(&s, "randread");
	for (long i = 0; i < count; i++) {
		double t = now();
		if (pread(fd, b, 4096, perm[i] * 4096) != 4096)
			die("pread %s", path);
		lat[i] = now() - t;
	}
	end(&s);
	close(fd);
	double sum = 0;
	for (long i = 0; i < count; i++)
		sum += lat[i];
	qsort(lat, count, sizeof *lat, cmp_double);
	report(&s, "count=%ld iops=%.1f mean_us=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f", count,
	       count / (s.t1 - s.t0), sum / count * 1e6, pct(lat, count, 50) * 1e6, pct(lat, count, 90) * 1e6,
	       pct(lat, count, 99) * 1e6, lat[count - 1] * 1e6);
	return 0;
}

enum { PHASE_CREATE, PHASE_STAT, PHASE_UNLINK, PHASES };
static const char *phase_names[PHASES] = { "create", "stat", "unlink" };

static void meta_phase(const char *dir, int phase, int worker, long first, long last)
{
	char path[4096], data[512];
	memset(data, 'x', sizeof data);
	for (long i = first; i < last; i++) {
		snprintf(path, sizeof path, "%s/w%d-f%ld", dir, worker, i);
		if (phase == PHASE_CREATE) {
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				die("create %s", path);
			if (write(fd, data, sizeof data) != sizeof data)
				die("write %s", path);
			if (close(fd) < 0)
				die("close %s", path);
		} else if (phase == PHASE_STAT) {
			struct stat st;
			if (stat(path, &st) < 0 || st.st_size != sizeof data)
				die("stat %s", path);
		} else if (unlink(path) < 0) {
			die("unlink %s", path);
		}
	}
}

/* Workers are processes (a shared directory, as a parallel build has);
 * the parent starts each phase in all of them at once through a pipe and
 * times it until the last one is done. */
static int meta(const char *dir, long files, int workers)
{
	int go[2], done[2];
	char name[32];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die("mkdir %s", dir);
	if (pipe(go) < 0 || pipe(done) < 0)
		die("pipe");
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			long first = files * w / workers, last = files * (w + 1) / workers;
			close(go[1]);
			close(done[0]);
			for (int p = 0; p < PHASES; p++) {
				char c;
				if (read(go[0], &c, 1) != 1)
					_exit(1);
				meta_phase(dir, p, w, first, last);
				if (write(done[1], "d", 1) != 1)
					_exit(1);
			}
			_exit(0);
		}
	}
	close(go[0]);
	close(done[1]);
	snprintf(name, sizeof name, "meta%d", workers);
	double secs[PHASES];
	struct span s;
	begin(&s, name);
	for (int p = 0; p < PHASES; p++) {
		double t = now();
		for (int w = 0; w < workers; w++)
			if (write(go[1], "g", 1) != 1)
				die("pipe");
		for (int w = 0; w < workers; w++) {
			char c;
			if (read(done[0], &c, 1) != 1)
				die("a worker failed in phase %s", phase_names[p]);
		}
		secs[p] = now() - t;
	}
	end(&s);
	int failed = 0, status;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	if (failed)
		die("a worker failed");
	rmdir(dir);
	report(&s, "files=%ld workers=%d create=%.3f stat=%.3f unlink=%.3f ops_per_s=%.1f", files, workers,
	       secs[0], secs[1], secs[2], files * 3 / (s.t1 - s.t0));
	return 0;
}

static int run(const char *name, char **argv)
{
	struct span s;
	int status;
	begin(&s, name);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	end(&s);
	report(&s, "rc=%d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int host(int argc, char **argv)
{
	char line[1024] = "", answer[256];
	for (int i = 0; i < argc; i++) {
		if (i)
			strncat(line, " ", sizeof line - strlen(line) - 1);
		strncat(line, argv[i], sizeof line - strlen(line) - 1);
	}
	if (agent(line, answer, sizeof answer) < 0)
		die("no answer from the agent on vsock 2:%s", getenv("GB_AGENT_PORT") ? getenv("GB_AGENT_PORT") : "(unset)");
	puts(answer);
	return strncmp(answer, "ok", 2) == 0 ? 0 : 1;
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= w;
	}
	return 0;
}

static void relay_connection(int tcp, unsigned cid, unsigned vport)
{
	int v = -1;
	/* A privileged vsock port, as mount.vsock takes for root's (the
	 * kernel NFS client's) connections: the export is "secure". */
	for (unsigned port = 1023; port >= 512; port--) {
		v = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (v < 0)
			_exit(1);
		struct sockaddr_vm local = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
		if (bind(v, (struct sockaddr *)&local, sizeof local) == 0)
			break;
		close(v);
		v = -1;
		if (errno != EADDRINUSE)
			break;
	}
	if (v < 0)
		_exit(1);
	/* The same vsock buffer as mount.vsock's (2 MiB). */
	unsigned long long size = 2 * 1024 * 1024;
	setsockopt(v, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &size, sizeof size);
	setsockopt(v, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &size, sizeof size);
	struct sockaddr_vm host = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = vport };
	if (connect(v, (struct sockaddr *)&host, sizeof host) < 0)
		_exit(1);
	int one = 1;
	setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	static char b[256 * 1024];
	struct pollfd p[2] = { { .fd = tcp, .events = POLLIN }, { .fd = v, .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, b, sizeof b);
			if (n <= 0 || write_all(p[1 - i].fd, b, n) < 0)
				_exit(0);
		}
	}
}

static int relay(long port, long cid, long vport)
{
	prctl(PR_SET_NAME, "gb-relay");
	signal(SIGCHLD, SIG_IGN);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0)
		die("relay: listen on 127.0.0.1:%ld", port);
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			close(l);
			relay_connection(c, (unsigned)cid, (unsigned)vport);
		}
		close(c);
	}
	return 0;
}

static long number(const char *text, const char *what)
{
	char *e;
	errno = 0;
	long v = strtol(text, &e, 10);
	if (errno || *e || v < 0) {
		errno = 0;
		die("%s: not a number: %s", what, text);
	}
	return v;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "seqwrite") && argc == 5)
		return seqwrite(argv[2], number(argv[3], "MIB"), number(argv[4], "BS_KIB"));
	if (!strcmp(cmd, "seqread") && argc == 4)
		return seqread(argv[2], number(argv[3], "BS_KIB"));
	if (!strcmp(cmd, "randread") && argc == 5)
		return randread(argv[2], number(argv[3], "COUNT"), number(argv[4], "SEED"));
	if (!strcmp(cmd, "meta") && argc == 5)
		return meta(argv[2], number(argv[3], "FILES"), (int)number(argv[4], "WORKERS"));
	if (!strcmp(cmd, "run") && argc >= 4)
		return run(argv[2], argv + 3);
	if (!strcmp(cmd, "host") && argc >= 3)
		return host(argc - 2, argv + 2);
	if (!strcmp(cmd, "relay") && argc == 5)
		return relay(number(argv[2], "PORT"), number(argv[3], "CID"), number(argv[4], "VPORT"));
	fprintf(stderr, "usage: gbench seqwrite FILE MIB BS_KIB | seqread FILE BS_KIB | randread FILE COUNT SEED |\n"
			"       meta DIR FILES WORKERS | run NAME CMD [ARGS...] | host WORDS... | relay PORT CID VPORT\n");
	return 2;
}
