#ifndef RDPTRIAGE_CPCAP_SHIM_H
#define RDPTRIAGE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#include <stdio.h>
#endif
