/* make bench-mpi-net's link delay where the kernel has no netem qdisc
 * (CONFIG_NET_SCH_NETEM unset: this project's machine): a TUN device that
 * hands every packet routed into it back to the kernel DELAY_US microseconds
 * later, in arrival order (one fixed delay, no loss, no reordering).
 * eval/bench_mpi_net.sh runs it in the hub namespace and routes the packets
 * the ranks send to each other through it, so each crosses it once: a
 * one-way delay of DELAY_US, a round trip of twice that. The link rate stays
 * with tc (tbf on each rank's veth).
 *
 * The device is opened with IFF_VNET_HDR and the checksum/TSO offloads, so
 * TCP's large (GSO) packets pass whole, as they do through a veth, instead of
 * being cut into 1500-byte segments: one read and one write per 64 KB at
 * most. Packets wait in a FIFO of at most QCAP packets (a packet arriving
 * when it is full is dropped and counted). Timing: ppoll with nanosecond
 * timeouts and a 1 ns timer slack: a packet leaves at the first wake-up at or
 * after its due time, late by the machine's wake-up latency (tens of
 * microseconds on a loaded VM: a 0.1 ms round trip becomes ~0.2 ms). The
 * counts at exit say how late on average; bench_mpi_net.sh also measures the
 * round trip itself. (Waking early by the average lateness does not work: on
 * a loaded machine the lateness approaches the delay and packets then leave
 * at once.)
 *
 * usage: netdelay IFNAME DELAY_US
 * Creates IFNAME (non-persistent: it disappears when netdelay exits), prints
 * "ready" on stdout once it exists, and runs until SIGTERM/SIGINT; then
 * prints one line of counts on stderr and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define PKT_MAX (65536 + 64) /* an IP packet (<= 64 KB, GSO included) and its virtio_net_hdr */
#define QCAP 8192            /* packets in flight at most */

typedef struct {
    uint64_t due; /* CLOCK_MONOTONIC ns */
    uint32_t len;
    unsigned char *buf;
} pkt;

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "netdelay: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv) {
    char *end = NULL;
    long us = argc == 3 ? strtol(argv[2], &end, 10) : -1;
    if (argc != 3 || !end || *end || us < 0 || us > 10000000 || strlen(argv[1]) >= IFNAMSIZ || !argv[1][0]) {
        fprintf(stderr, "usage: netdelay IFNAME DELAY_US (0..10000000; IFNAME shorter than %d bytes)\n", IFNAMSIZ);
        return 2;
    }
    uint64_t delay = (uint64_t)us * 1000u;

    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return die("/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, argv[1], strlen(argv[1]));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) return die("TUNSETIFF");
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0)
        return die("TUNSETOFFLOAD");
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) return die("O_NONBLOCK");
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* the signals are delivered only inside ppoll, so `stop` is never missed */
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);

    static pkt q[QCAP];
    static unsigned char *pool[QCAP + 1]; /* free buffers, allocated as the queue first grows */
    size_t head = 0, tail = 0, n_pool = 0;
    unsigned long long n_in = 0, bytes_in = 0, n_out = 0, n_drop = 0, n_err = 0, n_late = 0, max_q = 0;
    double late_sum = 0; /* ns: sent - due, over the packets sent */
    printf("ready\n");
    fflush(stdout);

    while (!stop) {
        uint64_t t = now_ns();
        while (tail != head && q[tail % QCAP].due <= t) { /* due: back to the kernel */
            pkt *p = &q[tail % QCAP];
            if (write(fd, p->buf, p->len) < 0) n_err++; /* the kernel refused it: lost, counted */
            n_out++;
            late_sum += (double)(t - p->due);
            n_late += t - p->due > 100000u; /* more than 0.1 ms late */
            pool[n_pool++] = p->buf;
            tail++;
        }
        for (int k = 0; k < 64; k++) { /* arrivals */
            if (head - tail == QCAP) { /* full: read one and drop it */
                static unsigned char scratch[PKT_MAX];
                if (read(fd, scratch, sizeof scratch) < 0) break;
                n_drop++;
                continue;
            }
            unsigned char *b = n_pool ? pool[--n_pool] : NULL;
            if (!b) {
                b = malloc(PKT_MAX);
                if (!b) return die("malloc");
            }
            ssize_t n = read(fd, b, PKT_MAX);
            if (n <= 0) {
                pool[n_pool++] = b;
                if (n < 0 && errno != EAGAIN && errno != EINTR) return die("read");
                break;
            }
            q[head % QCAP] = (pkt){.due = now_ns() + delay, .len = (uint32_t)n, .buf = b};
            head++;
            n_in++;
            bytes_in += (unsigned long long)n;
            if (head - tail > max_q) max_q = head - tail;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        struct timespec ts, *tp = NULL;
        if (tail != head) {
            uint64_t t1 = now_ns(), due = q[tail % QCAP].due, w = due > t1 ? due - t1 : 0;
            ts.tv_sec = (time_t)(w / 1000000000u);
            ts.tv_nsec = (long)(w % 1000000000u);
            tp = &ts;
        }
        if (ppoll(&pfd, 1, tp, &wait_mask) < 0 && errno != EINTR) return die("ppoll");
    }
    fprintf(stderr,
            "netdelay %s: %lld us; %llu packets, %llu bytes; %llu dropped (queue full), %llu refused by the "
            "kernel; at most %llu queued; sent %.1f us after the due time on average, %llu packets more than "
            "0.1 ms late\n",
            argv[1], (long long)us, n_in, bytes_in, n_drop, n_err, max_q, n_out ? late_sum / 1e3 / (double)n_out : 0.0,
            n_late);
    return 0;
}
