/*
 * bare-loop: the baseline for bench/run. Opens one capture with libpcap (nanosecond
 * timestamps, as rdptriage does) and reads every packet with pcap_next_ex, touching each
 * packet minimally: it adds up the captured lengths and one byte per packet, so the
 * compiler cannot drop the reads. Nothing is decoded. Its throughput is the ceiling any
 * libpcap-based analyzer can reach on this machine.
 *
 * Build: cc -O2 -o bare-loop bench/bare-loop.c -lpcap
 * Usage: bare-loop FILE
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, errbuf);
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
