/*
 * flow-loop: the bare loop (bare-loop.c, with rdptriage's 1 MiB stdio buffer) plus the least
 * any TCP session tracker must do for every packet: decode Ethernet (802.1Q/QinQ tags), IPv4
 * or IPv6 and the TCP header, find the connection in a hash table by its direction-free
 * 5-tuple, and count packets, bytes and flags per direction. No reassembly, no expiry, no
 * parsing, no verdicts, no report, no allocation per packet. bench/run times it beside the
 * bare loop to show how much of the throughput goal's budget this floor already takes.
 *
 * Build: cc -O2 -o flow-loop bench/flow-loop.c -lpcap
 * Usage: flow-loop FILE   (Ethernet captures only; prints TCP packets and connections)
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct flow {
    uint8_t low[16], high[16];  /* addresses, IPv4 in the first 4 bytes */
    uint16_t low_port, high_port;
    uint8_t used, flags[2];
    uint32_t packets[2], last_seq[2];
    uint64_t bytes[2];
};

static struct flow *table;
static size_t capacity = 1 << 16, count;

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static size_t slot(const uint8_t *low, const uint8_t *high, uint16_t lp, uint16_t hp) {
    uint64_t a, b, c, d;
    memcpy(&a, low, 8), memcpy(&b, low + 8, 8), memcpy(&c, high, 8), memcpy(&d, high + 8, 8);
    return mix(mix(a ^ c ^ ((uint64_t)lp << 48 | (uint64_t)hp << 32)) ^ b ^ d) & (capacity - 1);
}

static struct flow *find(const uint8_t *low, const uint8_t *high, uint16_t lp, uint16_t hp) {
    for (size_t i = slot(low, high, lp, hp);; i = (i + 1) & (capacity - 1)) {
        struct flow *f = &table[i];
        if (!f->used) {
            f->used = 1;
            memcpy(f->low, low, 16), memcpy(f->high, high, 16);
            f->low_port = lp, f->high_port = hp;
            count++;
            return f;
        }
        if (f->low_port == lp && f->high_port == hp && !memcmp(f->low, low, 16) && !memcmp(f->high, high, 16))
            return f;
    }
}

static void grow(void) {
    struct flow *old = table;
    size_t n = capacity;
    capacity *= 2;
    table = calloc(capacity, sizeof *table);
    if (!table) exit(1);
    count = 0;
    for (size_t i = 0; i < n; i++)
        if (old[i].used) *find(old[i].low, old[i].high, old[i].low_port, old[i].high_port) = old[i];
    free(old);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    FILE *file = fopen(argv[1], "rb");
    char *buffer = malloc(1 << 20);
    if (!file || !buffer || setvbuf(file, buffer, _IOFBF, 1 << 20) != 0) {
        fprintf(stderr, "flow-loop: %s: cannot open\n", argv[1]);
        return 1;
    }
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!p) {
        fprintf(stderr, "flow-loop: %s: %s\n", argv[1], errbuf);
        return 1;
    }
    if (pcap_datalink(p) != DLT_EN10MB) {
        fprintf(stderr, "flow-loop: %s: only Ethernet captures\n", argv[1]);
        return 1;
    }
    table = calloc(capacity, sizeof *table);
    struct pcap_pkthdr *hdr;
    const u_char *d;
    uint64_t tcp = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &hdr, &d)) == 1) {
        uint32_t n = hdr->caplen, o = 14;
        if (n < o) continue;
        uint16_t type = d[12] << 8 | d[13];
        while ((type == 0x8100 || type == 0x88a8) && o + 4 <= n) {
            type = d[o + 2] << 8 | d[o + 3];
            o += 4;
        }
        uint8_t src[16] = {0}, dst[16] = {0}, proto;
        if (type == 0x0800) {
            if (o + 20 > n) continue;
            /* Later fragments carry no TCP header. */
            if (((d[o + 6] & 0x1f) | d[o + 7]) != 0) continue;
            proto = d[o + 9];
            memcpy(src, d + o + 12, 4), memcpy(dst, d + o + 16, 4);
            o += (d[o] & 15) * 4;
        } else if (type == 0x86dd) {
            if (o + 40 > n) continue;
            proto = d[o + 6];
            memcpy(src, d + o + 8, 16), memcpy(dst, d + o + 24, 16);
            o += 40;
        } else {
            continue;
        }
        if (proto != 6 || o + 20 > n) continue;
        tcp++;
        uint16_t sp = d[o] << 8 | d[o + 1], dp = d[o + 2] << 8 | d[o + 3];
        int c = memcmp(src, dst, 16);
        int dir = c < 0 || (c == 0 && sp <= dp) ? 0 : 1;
        if (2 * count >= capacity) grow();
        struct flow *f = dir ? find(dst, src, dp, sp) : find(src, dst, sp, dp);
        f->packets[dir]++;
        f->bytes[dir] += hdr->len;
        f->last_seq[dir] = (uint32_t)d[o + 4] << 24 | d[o + 5] << 16 | d[o + 6] << 8 | d[o + 7];
        f->flags[dir] |= d[o + 13];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "flow-loop: %s: %s\n", argv[1], pcap_geterr(p));
        return 1;
    }
    printf("%llu TCP packets, %zu connections\n", (unsigned long long)tcp, count);
    return 0;
}
