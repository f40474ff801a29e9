// worker.c: one process of the capture benchmark's workload (scripts/bench-capture.sh).
// It waits for a line on stdin (sent once it is in the benchmark cgroup), then holds
// ~64 fds (40 files, 5 pipes, a TCP listener with 5 connections to itself, i.e. 11
// TCP sockets), 4 threads and 1 MiB of touched anonymous memory, and sleeps.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void *sleeper(void *arg) { (void)arg; for (;;) pause(); return NULL; }

int main(void) {
	char line[16];
	if (!fgets(line, sizeof line, stdin)) return 1;
	for (int i = 0; i < 40; i++) open("/dev/null", O_RDONLY);
	for (int i = 0; i < 5; i++) { int p[2]; if (pipe(p)) return 2; }
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t n = sizeof a;
	if (bind(l, (void *)&a, sizeof a) || listen(l, 16) || getsockname(l, (void *)&a, &n)) return 3;
	for (int i = 0; i < 5; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (void *)&a, sizeof a)) return 4;
		if (accept(l, NULL, NULL) < 0) return 5;
	}
	for (int i = 0; i < 3; i++) { pthread_t t; pthread_create(&t, NULL, sleeper, NULL); }
	char *m = malloc(1 << 20);
	memset(m, 1, 1 << 20);
	puts("ready");
	fflush(stdout);
	for (;;) pause();
}
