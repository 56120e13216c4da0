/* httpload.c — the load generator of the HTTP benchmark: C connections held open (keep-alive),
 * one request in flight on each, driven by one epoll loop for a fixed time. Every answer is
 * checked (status, length, and for GETs the bytes). Speaks three dialects so helios and its peers
 * see the same load:
 *   get   GET PATH-PREFIX<name> of the files listed in NAMES (their expected bytes read from DIR)
 *   put   PUT /v1/blobs/<id> of fresh 4 KiB bodies (each unique; the id computed here)
 *   mcset memcached text protocol "set" of fresh 4 KiB values
 *   mcget memcached text protocol "get" of the files listed in DIR (set first, named by file name)
 * usage: helios-httpload MODE PORT CONNS SECONDS [DIR PATH-PREFIX]
 * prints one line: requests/s p50_us p99_us p999_us errors */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include "helios.h"

#define BODY 4096
#define MAX_FILES 256

enum { M_GET, M_PUT, M_MCSET, M_MCGET };

typedef struct file {
	char name[80];
	uint8_t data[BODY];
	size_t len;
} file;

typedef struct cn {
	int fd, file;
	uint64_t t0, seq;
	char out[BODY + 512];
	size_t out_len, out_off;
	char in[BODY * 2 + 1024];
	size_t in_len;
} cn;

static int mode, nfiles;
static file files[MAX_FILES];
static const char *prefix = "/";
static uint64_t *lat;
static size_t nlat, lat_cap;
static uint64_t errors, done, put_seq;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A unique, incompressible body (like most build outputs once compressed): xorshift64* bytes
 * seeded by the sequence number and the process. */
static void fresh_body(uint8_t *b, uint64_t seq)
{
	uint64_t x = (seq + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 40);
	for (size_t i = 0; i < BODY; i += 8) {
		x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
		uint64_t v = x * 0x2545F4914F6CDD1Dull;
		memcpy(b + i, &v, 8);
	}
}

static void build(cn *c)
{
	c->in_len = 0;
	c->out_off = 0;
	if (mode == M_GET || mode == M_MCGET) {
		c->file = (int)(c->seq++ % (uint64_t)nfiles);
		if (mode == M_GET)
			c->out_len = (size_t)snprintf(c->out, sizeof c->out, "GET %s%s HTTP/1.1\r\nHost: bench\r\n\r\n",
			                              prefix, files[c->file].name);
		else
			c->out_len = (size_t)snprintf(c->out, sizeof c->out, "get %s\r\n", files[c->file].name);
		return;
	}
	uint8_t body[BODY];
	uint64_t seq = put_seq++;
	fresh_body(body, seq);
	int n;
	if (mode == M_PUT) {
		hl_id id;
		char hex[HL_ID_HEX_LEN + 1];
		hl_hash(body, BODY, &id);
		hl_id_format(&id, hex);
		n = snprintf(c->out, sizeof c->out, "PUT /v1/blobs/%s HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n",
		             hex, BODY);
	} else {
		n = snprintf(c->out, sizeof c->out, "set k%llu 0 0 %d\r\n", (unsigned long long)seq, BODY);
	}
	memcpy(c->out + n, body, BODY);
	c->out_len = (size_t)n + BODY;
	if (mode == M_MCSET) {
		memcpy(c->out + c->out_len, "\r\n", 2);
		c->out_len += 2;
	}
}

/* 1: a whole answer is in (ok or counted as an error), 0: need more bytes. */
static int parse(cn *c)
{
	c->in[c->in_len] = 0;
	if (mode == M_MCSET) {
		char *eol = strstr(c->in, "\r\n");
		if (!eol)
			return 0;
		errors += strncmp(c->in, "STORED\r\n", 8) != 0;
		return 1;
	}
	if (mode == M_MCGET) { /* VALUE <key> <flags> <len>\r\n<bytes>\r\nEND\r\n */
		char *eol = strstr(c->in, "\r\n");
		if (!eol)
			return 0;
		if (strncmp(c->in, "VALUE ", 6)) {
			errors++;
			return 1;
		}
		size_t len = 0, head = (size_t)(eol + 2 - c->in);
		unsigned flags;
		if (sscanf(c->in, "VALUE %*s %u %zu", &flags, &len) != 2)
			len = 0;
		if (c->in_len < head + len + 7)
			return 0;
		errors += len != files[c->file].len || memcmp(c->in + head, files[c->file].data, len) ||
		          memcmp(c->in + head + len, "\r\nEND\r\n", 7);
		return 1;
	}
	char *end = strstr(c->in, "\r\n\r\n");
	if (!end)
		return 0;
	size_t head = (size_t)(end + 4 - c->in);
	int status = strncmp(c->in, "HTTP/1.", 7) ? 0 : atoi(c->in + 9); /* 0: not an answer (e.g. a
	                                              * socket that connected to itself, nothing listening) */
	char *cl = strcasestr(c->in, "\r\ncontent-length:");
	size_t len = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	if (c->in_len < head + len)
		return 0;
	if (mode == M_GET)
		errors += status != 200 || len != files[c->file].len || memcmp(c->in + head, files[c->file].data, len);
	else
		errors += status != 201 && status != 200;
	return 1;
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static int load_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)) && nfiles < MAX_FILES) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof files[0].name)
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		FILE *f = fopen(p, "rb");
		if (!f)
			continue;
		file *fl = &files[nfiles];
		fl->len = fread(fl->data, 1, BODY, f);
		fclose(f);
		snprintf(fl->name, sizeof fl->name, "%s", e->d_name);
		nfiles++;
	}
	closedir(d);
	return nfiles ? 0 : -1;
}

/* Sets every file in memcached (key: its name), one blocking connection. */
static int mc_preload(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
		return -1;
	for (int i = 0; i < nfiles; i++) {
		char head[128], reply[64];
		int n = snprintf(head, sizeof head, "set %s 0 0 %zu\r\n", files[i].name, files[i].len);
		if (send(fd, head, (size_t)n, 0) != n ||
		    send(fd, files[i].data, files[i].len, 0) != (ssize_t)files[i].len || send(fd, "\r\n", 2, 0) != 2 ||
		    recv(fd, reply, sizeof reply, 0) < 8 || strncmp(reply, "STORED\r\n", 8)) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: helios-httpload get|put|mcset|mcget PORT CONNS SECONDS [DIR PATH-PREFIX]\n");
		return 2;
	}
	mode = !strcmp(argv[1], "get")     ? M_GET
	       : !strcmp(argv[1], "put")   ? M_PUT
	       : !strcmp(argv[1], "mcget") ? M_MCGET
	                                   : M_MCSET;
	int port = atoi(argv[2]), conns = atoi(argv[3]);
	double secs = atof(argv[4]);
	if (mode == M_GET) {
		if (argc < 7 || load_files(argv[5])) {
			fprintf(stderr, "httpload: get needs a directory of files and a path prefix\n");
			return 2;
		}
		prefix = argv[6];
	}
	if (mode == M_MCGET) {
		if (argc < 6 || load_files(argv[5]) || mc_preload(port)) {
			fprintf(stderr, "httpload: mcget needs a directory of files and a memcached to set them in\n");
			return 2;
		}
	}
	lat_cap = 1 << 22;
	lat = malloc(lat_cap * sizeof(*lat));
	cn *cs = calloc((size_t)conns, sizeof(*cs));
	int ep = epoll_create1(0);
	for (int i = 0; i < conns; i++) {
		cs[i].fd = connect_to(port);
		if (cs[i].fd < 0) {
			perror("connect");
			return 1;
		}
		cs[i].seq = (uint64_t)i;
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
		build(&cs[i]);
		cs[i].t0 = now_ns();
	}
	uint64_t start = now_ns(), stop = start + (uint64_t)(secs * 1e9);
	struct epoll_event evs[512];
	while (now_ns() < stop) {
		int n = epoll_wait(ep, evs, 512, 100);
		for (int i = 0; i < n; i++) {
			cn *c = evs[i].data.ptr;
			for (;;) {
				while (c->out_off < c->out_len) { /* write what is pending */
					ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
					if (w <= 0)
						break;
					c->out_off += (size_t)w;
				}
				ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, 0);
				if (r == 0 || (r < 0 && errno != EAGAIN)) { /* closed: count it, reconnect */
					errors++;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					c->fd = connect_to(port);
					struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
					build(c);
					c->t0 = now_ns();
					break;
				}
				if (r < 0)
					break;
				c->in_len += (size_t)r;
				if (!parse(c))
					continue;
				uint64_t t = now_ns();
				if (nlat < lat_cap)
					lat[nlat++] = t - c->t0;
				done++;
				build(c);
				c->t0 = t;
				if (t >= stop) /* a peer that answers every request at once never ends the loop */
					break;
			}
		}
	}
	double el = (double)(now_ns() - start) / 1e9;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	if (!nlat) {
		printf("0 0 0 0 %llu\n", (unsigned long long)errors);
		return 1;
	}
	printf("%.0f %.1f %.1f %.1f %llu\n", (double)done / el, lat[nlat / 2] / 1e3, lat[nlat * 99 / 100] / 1e3,
	       lat[nlat * 999 / 1000] / 1e3, (unsigned long long)errors);
	return 0;
}
