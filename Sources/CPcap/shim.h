#ifndef RDPTRIAGE_CPCAP_SHIM_H
#define RDPTRIAGE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#include <stdio.h>

/* A read prefetch hint, which Swift cannot express: the read-ahead thread's frames are
   cold in the analysing core's cache. */
static inline void rdptriage_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
#endif
