/*
 * Drop-flood generator for scripts/bench: UDP datagrams to one address and
 * port, sent with sendmmsg in batches, for a number of seconds. Prints the
 * datagrams sent. Meant to run inside a network namespace the bench made.
 *   flood ADDR PORT SECONDS [PAYLOAD_BYTES]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	char payload[1500] = { 0 };
	unsigned long long sent = 0;
	double end;
	int fd, len, i;

	if (argc < 4) {
		fprintf(stderr, "usage: flood ADDR PORT SECONDS [PAYLOAD_BYTES]\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "flood: bad address %s\n", argv[1]);
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	end = now() + atof(argv[3]);
	len = argc > 4 ? atoi(argv[4]) : 16;
	if (len < 0 || len > (int)sizeof(payload))
		len = 16;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("flood: socket");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = payload;
		iov[i].iov_len = len;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
	}
	while (now() < end) {
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			/* ICMP port unreachable comes back as ECONNREFUSED on some paths: keep going */
			if (errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN)
				continue;
			perror("flood: sendmmsg");
			return 1;
		}
		sent += n;
	}
	printf("%llu\n", sent);
	return 0;
}
