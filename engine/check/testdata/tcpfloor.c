// tcpfloor: the floor of TCP_CHECK's cost on this host, for
// BenchmarkTCPCheck10k with KEEPWATCH_CHECK_FLOOR=1. It runs the probes
// the connect loop (tcploop.go) runs, with only their system calls: a
// nonblocking connect on a pooled socket registered edge-triggered with
// one epoll instance, epoll_wait, and connect(AF_UNSPEC) to reset and
// reuse the socket; each target once a second, spread evenly over the
// second, no scheduler, no events, no runtime. It speaks the checker
// role's protocol: addresses on stdin, "start" and "stop" around the
// measured window, then the result as JSON.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long tv_ns(struct timeval tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; }

int main(int argc, char **argv) {
	int total = argc > 1 ? atoi(argv[1]) : 12, settle = 4;
	static struct sockaddr_in addrs[65536];
	int n = 0;
	char line[128];
	while (n < 65536 && fgets(line, sizeof line, stdin)) {
		char *colon = strrchr(line, ':');
		if (!colon) continue;
		*colon = 0;
		addrs[n].sin_family = AF_INET;
		addrs[n].sin_port = htons(atoi(colon + 1));
		inet_pton(AF_INET, line, &addrs[n].sin_addr);
		n++;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	// Sockets by slot; the pool of idle slots; the target on each slot.
	enum { MAXS = 8192 };
	static int fd[MAXS], pool[MAXS], on[MAXS];
	int nsock = 0, npool = 0;
	static int ok[65536];
	long long probes = 0, failures = 0, t0 = now_ns(), step = 1000000000LL / n;
	long long startw = t0 + settle * 1000000000LL, stopw = t0 + total * 1000000000LL;
	int measuring = 0;
	struct rusage ru0, ru1;
	long long w0 = 0;
	long long next = t0; // due time of target k
	int k = 0;
	struct epoll_event evs[256];
	for (;;) {
		long long now = now_ns();
		if (!measuring && now >= startw) {
			printf("start\n");
			fflush(stdout);
			getrusage(RUSAGE_SELF, &ru0);
			w0 = now;
			measuring = 1;
			probes = 0;
		}
		if (now >= stopw) break;
		int timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
		int m = epoll_wait(ep, evs, 256, timeout);
		for (int i = 0; i < m; i++) {
			int s = evs[i].data.u32;
			if (on[s] < 0) continue; // a reset's wakeup on an idle socket
			if (!(evs[i].events & EPOLLOUT) && !(evs[i].events & (EPOLLERR | EPOLLHUP))) continue;
			int good = !(evs[i].events & (EPOLLERR | EPOLLHUP));
			ok[on[s]] = good;
			if (!good) failures++;
			probes++;
			on[s] = -1;
			struct sockaddr unspec = {.sa_family = AF_UNSPEC};
			connect(fd[s], &unspec, sizeof unspec);
			pool[npool++] = s;
		}
		now = now_ns();
		while (next <= now) {
			int s;
			if (npool > 0) {
				s = pool[--npool];
			} else {
				if (nsock == MAXS) break;
				s = nsock++;
				fd[s] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
				struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.u32 = s};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd[s], &ev);
			}
			on[s] = k;
			if (connect(fd[s], (struct sockaddr *)&addrs[k], sizeof addrs[k]) != 0 && errno != EINPROGRESS) {
				failures++;
				on[s] = -1;
				pool[npool++] = s;
			}
			k = (k + 1) % n;
			next += step;
		}
	}
	getrusage(RUSAGE_SELF, &ru1);
	long long wall = now_ns() - w0;
	printf("stop\n");
	int up = 0;
	for (int i = 0; i < n; i++) up += ok[i];
	printf("{\"User\":%lld,\"Sys\":%lld,\"Wall\":%lld,\"Waits\":%ld,\"RSS\":0,\"Probes\":%lld,"
	       "\"P50\":0,\"P99\":0,\"Max\":0,\"Failures\":%lld,\"FirstFailure\":\"\",\"Up\":%d}\n",
	       tv_ns(ru1.ru_utime) - tv_ns(ru0.ru_utime), tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_stime), wall,
	       ru1.ru_nvcsw - ru0.ru_nvcsw, probes, failures, up);
	return 0;
}
