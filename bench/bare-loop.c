/*
 * bare-loop: the baseline for bench/run. Opens one capture with libpcap (nanosecond
 * timestamps, as rdptriage does) and reads every packet with pcap_next_ex, touching each
 * packet minimally: it adds up the captured lengths and one byte per packet, so the
 * compiler cannot drop the reads. Nothing is decoded. Its throughput is the ceiling any
 * libpcap-based analyzer can reach on this machine.
 *
 * With --buffer BYTES the file is opened with fopen, given a stdio buffer of that size and
 * handed to pcap_fopen_offline (as rdptriage does): libpcap's two small freads per record
 * then cost one read(2) per BYTES instead of one per page.
 *
 * Build: cc -O2 -o bare-loop bench/bare-loop.c -lpcap
 * Usage: bare-loop [--buffer BYTES] FILE
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long buffer = 0;
    if (argc == 4 && strcmp(argv[1], "--buffer") == 0) {
        buffer = strtol(argv[2], NULL, 10);
        argv += 2;
        argc -= 2;
    }
    if (argc != 2 || buffer < 0) {
        fprintf(stderr, "usage: %s [--buffer BYTES] FILE\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p;
    if (buffer > 0) {
        FILE *f = fopen(argv[1], "rb");
        char *mem = malloc((size_t)buffer);
        if (f == NULL || mem == NULL || setvbuf(f, mem, _IOFBF, (size_t)buffer) != 0) {
            fprintf(stderr, "bare-loop: %s: cannot open with a %ld-byte buffer\n", argv[1], buffer);
            return 1;
        }
        p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    } else {
        p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, errbuf);
    }
    if (p == NULL) {
        fprintf(stderr, "bare-loop: %s: %s\n", argv[1], errbuf);
        return 1;
    }
    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t packets = 0, caplen = 0, touch = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
        packets++;
        caplen += hdr->caplen;
        if (hdr->caplen > 0) touch += data[hdr->caplen - 1];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "bare-loop: %s: %s\n", argv[1], pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("packets=%llu caplen_bytes=%llu touch=%llu\n", (unsigned long long)packets,
           (unsigned long long)caplen, (unsigned long long)touch);
    return 0;
}
