# shellcheck shell=bash
# lib.sh: shared code of the rdptriage capture lab. Sourced by captures/lab/scenarios/*.sh.
#
# Lab hosts are network namespaces joined by veth pairs (addresses: captures/README.md):
#
#   rdpt-client  eth0 192.0.2.10/24 2001:db8:1::10/64
#        |
#   rdpt-router  eth-c 192.0.2.1 2001:db8:1::1 | eth-s 198.51.100.1 2001:db8:2::1 | eth-d 203.0.113.1
#        |                                          |
#   rdpt-server  eth0 198.51.100.20 2001:db8:2::20   rdpt-dns eth0 203.0.113.53 (+ .80), optional
#
# No namespace has a default route and nothing is attached to the host's interfaces, so no lab
# packet can leave the lab. Every process the lab starts is recorded by PID and ended by PID in
# the EXIT trap, which also deletes the namespaces and the temp dir (set RDPT_KEEP=1 to keep the
# temp dir for debugging).
#
# Environment:
#   RDPT_OUT     where NAME.pcap / NAME.keys / NAME.expected.json go (default: captures/)
#   RDPT_SUFFIX  suffix for namespace names (default none: rdpt-client, rdpt-router, ...)
#   RDPT_KEEP=1  keep the temp dir (logs, configs) after the run
#   RDPT_PYCLIENT_VENV  aardwolf's virtual environment for lab_pyclient (default /opt/rdpt-lab-venv,
#                where install-pyclient puts it)
#   RDPT_LIVE_BIN  an rdptriage binary: `rdptriage live` also sniffs on the client's interface
#                (text and ndjson) while tcpdump records; its output is staged as
#                NAME.live.txt (with --export NAME.live-export), NAME.live.ndjson (with
#                --keylog on the client's key log as it is written) and NAME.live.redacted.ndjson
#                (--redact --export NAME.live-export-redacted), and their .err

set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$LAB_DIR/../.." && pwd)"
OUT_DIR="${RDPT_OUT:-$REPO_DIR/captures}"
SUFFIX="${RDPT_SUFFIX:-}"
NS_C="rdpt-client$SUFFIX"
NS_R="rdpt-router$SUFFIX"
NS_S="rdpt-server$SUFFIX"
NS_D="rdpt-dns$SUFFIX"
ALL_NS=("$NS_C" "$NS_R" "$NS_S" "$NS_D")

# Lab addresses (captures/README.md)
CLIENT4=192.0.2.10      CLIENT6=2001:db8:1::10
ROUTER_C4=192.0.2.1     ROUTER_C6=2001:db8:1::1
ROUTER_S4=198.51.100.1  ROUTER_S6=2001:db8:2::1
SERVER4=198.51.100.20   SERVER6=2001:db8:2::20
ROUTER_D4=203.0.113.1
DNS4=203.0.113.53
WEB4=203.0.113.80       # second address of rdpt-dns, used for background HTTP

LAB_USER=alice
LAB_PASS='Lab-Passw0rd'  # lab-only credential, written as *** in expected files

# Things that tcpdump leaves out: link-layer housekeeping (ARP, IPv6 neighbour and router
# discovery, and multicast listener reports, which follow a hop-by-hop header). Everything else
# on the client's interface is recorded.
CAPTURE_FILTER='not arp and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 137) and not (ip6 and ip6[6] == 0 and ip6[40] == 58 and ip6[48] >= 130 and ip6[48] <= 143)'

SYS_PATH=/usr/sbin:/usr/bin:/sbin:/bin
PY=/usr/bin/python3

declare -A LAB_PIDS=()   # name -> pid of every background process the lab started
LAB_NS=()                # namespaces this run created
LAB_TMP=""
SCENARIO=""
CAPTURE_PID=""
CLIENT_DISPLAY=""
CLIENT_RC=0
CLIENT_LOG=""
CLIENT_CMD=""
CLIENT_CMDS=()          # every client command of the run, in order (password shown as ***)
CLIENT_RUNS=0
CLIENT_ERRORS=()
CLIENT_SOFTWARE=""      # set by lab_pyclient; xfreerdp's version otherwise
SOFTWARE_SERVER="none"
PYCLIENT_VENV="${RDPT_PYCLIENT_VENV:-/opt/rdpt-lab-venv}"   # captures/lab/install-pyclient

log() { printf '[%s] %s\n' "${SCENARIO:-lab}" "$*" >&2; }
die() { local rc=$1; shift; log "ERROR: $*"; exit "$rc"; }

# ---------------------------------------------------------------------------------------------
# setup / teardown

lab_require_root() {
	[[ $EUID -eq 0 ]] || die 77 "the lab needs root (network namespaces, nftables, tcpdump)"
	local probe="rdpt-probe-$$"
	if ! ip netns add "$probe" 2>/dev/null; then die 77 "network namespaces are unavailable"; fi
	ip netns del "$probe" 2>/dev/null || true
	local t missing=()
	for t in ip ss nft tcpdump tshark timeout openssl gcc Xvfb xfreerdp freerdp-shadow-cli \
		winpr-hash xrdp xrdp-keygen dnsmasq socat curl ping ethtool getent "$PY"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[[ ${#missing[@]} -eq 0 ]] ||
		die 1 "missing tools: ${missing[*]} (install the packages in captures/lab/packages.txt)"
}

# lab_init NAME: start a scenario run (temp dir, traps, stale cleanup, key-log shim).
lab_init() {
	SCENARIO=$1
	lab_require_root
	mkdir -p "$OUT_DIR"
	LAB_TMP=$(mktemp -d "/tmp/rdpt-lab-$SCENARIO.XXXXXX")
	chmod 755 "$LAB_TMP"
	trap lab_teardown EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	lab_cleanup_stale
	gcc -shared -fPIC -O2 -Wall -o "$LAB_TMP/keylog-shim.so" "$LAB_DIR/keylog-shim.c" -ldl -lssl
	gcc -O2 -Wall -o "$LAB_TMP/xclose" "$LAB_DIR/xclose.c" -lX11
	STAGE="$LAB_TMP/out"     # results are staged here and moved to $OUT_DIR only on success
	mkdir -p "$STAGE"
	log "temp dir $LAB_TMP"
}

# Namespaces with our names left by a crashed run of the lab: end the processes still inside
# them (they were started by that run of the lab), then delete them.
lab_cleanup_stale() {
	local ns pid
	for ns in "${ALL_NS[@]}"; do
		[[ -e /run/netns/$ns ]] || continue
		log "removing stale namespace $ns from an earlier run"
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
		sleep 0.5
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
}

lab_teardown() {
	local rc=$?
	set +e
	trap - EXIT TERM INT
	local name pid
	for name in "${!LAB_PIDS[@]}"; do
		pid=${LAB_PIDS[$name]}
		kill -TERM "$pid" 2>/dev/null
	done
	for name in "${!LAB_PIDS[@]}"; do
		pid=${LAB_PIDS[$name]}
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	LAB_PIDS=()
	local ns
	for ns in "${LAB_NS[@]}"; do
		# anything still inside is a child of a process we started (e.g. a forked helper)
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	LAB_NS=()
	if [[ -n $LAB_TMP && -d $LAB_TMP ]]; then
		if [[ ${RDPT_KEEP:-0} == 1 || $rc -ne 0 ]]; then
			log "temp dir kept: $LAB_TMP"
		else
			rm -rf "$LAB_TMP"
		fi
	fi
	if [[ $rc -ne 0 ]]; then
		log "FAILED (exit $rc); $OUT_DIR/$SCENARIO.* left as they were"
	fi
	exit "$rc"
}

# in_ns NS cmd...: run a command inside a namespace (foreground).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_add_ns() {
	ip netns add "$1"
	LAB_NS+=("$1")
	ip -n "$1" link set lo up
	in_ns "$1" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
		net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 \
		net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0 \
		net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv4.tcp_mtu_probing=0
}

# lab_link NS1 IF1 MAC1 NS2 IF2 MAC2: a veth pair created directly inside the two namespaces.
lab_link() {
	ip link add "$2" address "$3" netns "$1" type veth peer name "$5" address "$6" netns "$4"
	local ns ifc
	for pair in "$1:$2" "$4:$5"; do
		ns=${pair%%:*} ifc=${pair#*:}
		# no offloads: what tcpdump records is what a real wire would carry
		in_ns "$ns" ethtool -K "$ifc" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
		ip -n "$ns" link set "$ifc" up
	done
}

# lab_topology [dns]: client - router - server (and the DNS/web host when "dns" is given).
lab_topology() {
	local with_dns=${1:-}
	lab_add_ns "$NS_C"; lab_add_ns "$NS_R"; lab_add_ns "$NS_S"
	lab_link "$NS_C" eth0 02:00:00:00:02:10 "$NS_R" eth-c 02:00:00:00:02:01
	lab_link "$NS_S" eth0 02:00:00:00:64:20 "$NS_R" eth-s 02:00:00:00:64:01
	in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

	ip -n "$NS_C" addr add "$CLIENT4/24" dev eth0
	ip -n "$NS_C" addr add "$CLIENT6/64" dev eth0 nodad
	ip -n "$NS_R" addr add "$ROUTER_C4/24" dev eth-c
	ip -n "$NS_R" addr add "$ROUTER_C6/64" dev eth-c nodad
	ip -n "$NS_R" addr add "$ROUTER_S4/24" dev eth-s
	ip -n "$NS_R" addr add "$ROUTER_S6/64" dev eth-s nodad
	ip -n "$NS_S" addr add "$SERVER4/24" dev eth0
	ip -n "$NS_S" addr add "$SERVER6/64" dev eth0 nodad
	# routes to the other lab subnets only: no default route anywhere
	ip -n "$NS_C" route add 198.51.100.0/24 via "$ROUTER_C4"
	ip -n "$NS_C" route add 203.0.113.0/24 via "$ROUTER_C4"
	ip -n "$NS_C" -6 route add 2001:db8:2::/64 via "$ROUTER_C6"
	ip -n "$NS_S" route add 192.0.2.0/24 via "$ROUTER_S4"
	ip -n "$NS_S" route add 203.0.113.0/24 via "$ROUTER_S4"
	ip -n "$NS_S" -6 route add 2001:db8:1::/64 via "$ROUTER_S6"
	if [[ $with_dns == dns ]]; then
		lab_add_ns "$NS_D"
		lab_link "$NS_D" eth0 02:00:00:00:71:53 "$NS_R" eth-d 02:00:00:00:71:01
		ip -n "$NS_R" addr add "$ROUTER_D4/24" dev eth-d
		ip -n "$NS_D" addr add "$DNS4/24" dev eth0
		ip -n "$NS_D" addr add "$WEB4/24" dev eth0
		ip -n "$NS_D" route add 192.0.2.0/24 via "$ROUTER_D4"
		ip -n "$NS_D" route add 198.51.100.0/24 via "$ROUTER_D4"
	fi
	# sanity: the lab is connected (this happens before the capture starts)
	in_ns "$NS_C" ping -c1 -W2 -q "$SERVER4" >/dev/null || die 1 "lab topology: client cannot reach server"
	in_ns "$NS_C" ping -6 -c1 -W2 -q "$SERVER6" >/dev/null || die 1 "lab topology: client cannot reach server over IPv6"
	if [[ $with_dns == dns ]]; then
		in_ns "$NS_C" ping -c1 -W2 -q "$DNS4" >/dev/null || die 1 "lab topology: client cannot reach dns host"
	fi
}

# nft_apply NS < ruleset
nft_apply() { in_ns "$1" nft -f -; }

# ---------------------------------------------------------------------------------------------
# background processes

# sh -c script: bind-mount each SRC:DST argument up to "--", then exec the rest (same PID).
# shellcheck disable=SC2016
LAB_BIND_SCRIPT='set -e; for b in "$@"; do if [ "$b" = -- ]; then shift; break; fi; [ -e "${b#*:}" ] || mkdir -p "${b#*:}"; mount --bind "${b%%:*}" "${b#*:}"; shift; done; exec "$@"'

# lab_bg NAME NS [-b SRC:DST]... [-e VAR=VAL]... -- cmd...
# Start cmd in the background inside NS with a clean environment, output in $LAB_TMP/NAME.log.
# -b bind-mounts SRC over DST in the process's private mount namespace (ip netns exec gives
# every process its own; DST is made first when missing: a package installed without systemd,
# as in a fresh container, has no /run/xrdp), -e sets environment variables. Its PID is kept for the teardown.
lab_bg() {
	local name=$1 ns=$2; shift 2
	local binds=() envs=("PATH=$SYS_PATH" "HOME=$LAB_TMP/home" "LANG=C.UTF-8")
	while [[ $# -gt 0 && $1 != -- ]]; do
		case $1 in
			-b) binds+=("$2"); shift 2 ;;
			-e) envs+=("$2"); shift 2 ;;
			*) die 2 "lab_bg: bad option $1" ;;
		esac
	done
	shift
	mkdir -p "$LAB_TMP/home"
	ip netns exec "$ns" env -i "${envs[@]}" /bin/sh -c "$LAB_BIND_SCRIPT" sh "${binds[@]}" -- "$@" \
		</dev/null >"$LAB_TMP/$name.log" 2>&1 &
	LAB_PIDS[$name]=$!
}

# lab_stop NAME: end one background process (by its PID) and wait for it.
lab_stop() {
	local name=$1 pid=${LAB_PIDS[$1]:-}
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "LAB_PIDS[$name]"
}

# lab_wait_listen NS PORT [PROTO]: wait (max 10 s) until something listens on PORT in NS.
lab_wait_listen() {
	local ns=$1 port=$2 proto=${3:-t}
	for _ in $(seq 1 100); do
		if in_ns "$ns" ss "-Hl${proto}n" "sport = :$port" | grep -q .; then return 0; fi
		sleep 0.1
	done
	die 1 "nothing listens on port $port in $ns (see $LAB_TMP/*.log)"
}

# lab_xvfb NAME NS: start an Xvfb inside NS (Xvfb picks a free display itself, -displayfd);
# sets XVFB_DISPLAY (":N") once a client can really open it.
lab_xvfb() {
	local name=$1 ns=$2 fifo="$LAB_TMP/$1.displayfd"
	for _try in 1 2 3; do
		: >"$fifo"
		ip netns exec "$ns" env -i PATH="$SYS_PATH" /bin/sh -c 'exec Xvfb -displayfd 5 -nolisten tcp -noreset -screen 0 1024x768x24 5>"$0"' "$fifo" \
			</dev/null >"$LAB_TMP/$name.log" 2>&1 &
		LAB_PIDS[$name]=$!
		XVFB_DISPLAY=""
		for _ in $(seq 1 100); do
			if [[ -s $fifo ]] && grep -q '^[0-9]' "$fifo"; then XVFB_DISPLAY=":$(head -1 "$fifo" | tr -d '\n ')"; break; fi
			sleep 0.1
		done
		if [[ -n $XVFB_DISPLAY ]]; then
			# xclose exits 2 when it cannot open the display
			local rc=0
			in_ns "$ns" env -i DISPLAY="$XVFB_DISPLAY" "$LAB_TMP/xclose" >/dev/null 2>&1 || rc=$?
			[[ $rc -ne 2 ]] && return 0
		fi
		log "Xvfb $name ($XVFB_DISPLAY) not usable, starting another"
		lab_stop "$name"
	done
	die 1 "Xvfb $name did not start"
}

# ---------------------------------------------------------------------------------------------
# servers

# lab_cert DIR [CN]: a fresh self-signed RSA 2048 certificate (DIR/cert.pem, DIR/key.pem).
lab_cert() {
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=${2:-rdp-lab-server}" \
		-keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}

# lab_xrdp NAME [key=value]...: start xrdp in rdpt-server with its own config directory
# (bind-mounted over /etc/xrdp, so keymaps and rsakeys.ini are private copies) and its own
# /run/xrdp (pid file, socket dir). Defaults: port 3389, security_layer=tls, fresh cert.
# Keys of [Globals] given as arguments override the defaults.
lab_xrdp() {
	local name=$1; shift
	local dir="$LAB_TMP/$name"
	mkdir -p "$dir/etc" "$dir/run/sockdir" "$dir/log"
	cp /etc/xrdp/km-*.ini /etc/xrdp/xrdp_keyboard.ini "$dir/etc/"
	xrdp-keygen xrdp "$dir/etc/rsakeys.ini" >/dev/null 2>&1 || die 1 "xrdp-keygen failed"
	[[ -f $dir/cert/cert.pem ]] || lab_cert "$dir/cert"
	declare -A g=(
		[ini_version]=1 [fork]=false [port]=3389 [use_vsock]=false [tcp_nodelay]=true
		[tcp_keepalive]=false [security_layer]=tls [crypt_level]=high
		[certificate]="$dir/cert/cert.pem" [key_file]="$dir/cert/key.pem"
		[ssl_protocols]="TLSv1.2, TLSv1.3" [autorun]="" [allow_channels]=true
		[allow_multimon]=false [bitmap_cache]=true [bitmap_compression]=true
		[bulk_compression]=true [max_bpp]=24 [new_cursors]=true [use_fastpath]=both
		[ls_title]=rdp-lab-server
	)
	local kv
	for kv in "$@"; do g[${kv%%=*}]=${kv#*=}; done
	{
		echo "[Globals]"
		for kv in "${!g[@]}"; do echo "$kv=${g[$kv]}"; done | sort
		cat <<-EOF
		[Logging]
		LogFile=$dir/log/xrdp.log
		LogLevel=DEBUG
		EnableSyslog=false
		[Channels]
		rdpdr=false
		rdpsnd=false
		drdynvc=false
		cliprdr=false
		rail=false
		xrdpvr=false
		tcutils=false
		[Xorg]
		name=Xorg
		lib=libxup.so
		username=ask
		password=ask
		ip=127.0.0.1
		port=-1
		code=20
		EOF
	} >"$dir/etc/xrdp.ini"
	XRDP_PORT=${g[port]##*:}
	lab_bg "$name" "$NS_S" -b "$dir/etc:/etc/xrdp" -b "$dir/run:/run/xrdp" -- \
		xrdp --nodaemon --config /etc/xrdp/xrdp.ini
	lab_wait_listen "$NS_S" "$XRDP_PORT"
	SOFTWARE_SERVER="xrdp $(dpkg-query -W -f '${Version}' xrdp)"
}

# lab_shadow NAME ARGS...: freerdp-shadow-cli under its own Xvfb in rdpt-server.
# Writes a SAM file (alice / LAB_PASS, via winpr-hash) to $LAB_TMP/sam. Port from /port: arg.
lab_shadow() {
	local name=$1; shift
	local home="$LAB_TMP/$name-home" port=3389 a
	mkdir -p "$home"
	winpr-hash -u "$LAB_USER" -p "$LAB_PASS" -f sam >"$LAB_TMP/sam"
	for a in "$@"; do [[ $a == /port:* ]] && port=${a#/port:}; done
	lab_xvfb "$name-xvfb" "$NS_S"
	lab_bg "$name" "$NS_S" -e "HOME=$home" -e "DISPLAY=$XVFB_DISPLAY" -- freerdp-shadow-cli "$@"
	lab_wait_listen "$NS_S" "$port"
	SOFTWARE_SERVER="freerdp-shadow-cli $(dpkg-query -W -f '${Version}' freerdp2-shadow-x11)"
}

# lab_peer NAME [--cn OWN_NAME] ARGS...: the purpose-built server peers/rdp_peer.py (for refusals
# no available server produces) in rdpt-server on port 3389, with a fresh certificate (for
# OWN_NAME, as a Windows server's self-signed RDP certificate names its FQDN), its RSAPublicKey in
# DER (what CredSSP binds) and the lab password in a file (never on a command line).
lab_peer() {
	local name=$1 cn=""; shift
	if [[ ${1:-} == --cn ]]; then cn=$2; shift 2; fi
	local dir="$LAB_TMP/$name"
	lab_cert "$dir" ${cn:+"$cn"}
	openssl x509 -in "$dir/cert.pem" -pubkey -noout |
		openssl rsa -pubin -RSAPublicKey_out -outform DER -out "$dir/pub.der" 2>/dev/null ||
		die 1 "could not extract the certificate's public key"
	printf '%s\n' "$LAB_PASS" >"$dir/password"
	chmod 600 "$dir/password"
	lab_bg "$name" "$NS_S" -- "$PY" -u "$LAB_DIR/peers/rdp_peer.py" --listen "$SERVER4" --port 3389 \
		--cert "$dir/cert.pem" --key "$dir/key.pem" --pubkey "$dir/pub.der" \
		--user "$LAB_USER" --password-file "$dir/password" "$@"
	lab_wait_listen "$NS_S" 3389
	SOFTWARE_SERVER="rdp_peer.py (purpose-built, captures/lab/peers/rdp_peer.py; Python $("$PY" -c 'import platform; print(platform.python_version())'))"
}

# ---------------------------------------------------------------------------------------------
# capture and client

# lab_capture_start [EXTRA_FILTER]: tcpdump on the client's interface (client side recording).
lab_capture_start() {
	local filter=$CAPTURE_FILTER
	[[ -n ${1:-} ]] && filter="($filter) and ($1)"
	# --immediate-mode: without it libpcap hands packets over in blocks, and the last block is
	# lost when tcpdump is stopped
	ip netns exec "$NS_C" tcpdump -i eth0 -n -U --immediate-mode -Z root -w "$LAB_TMP/raw.pcap" "$filter" \
		</dev/null >"$LAB_TMP/tcpdump.log" 2>&1 &
	CAPTURE_PID=$!
	LAB_PIDS[tcpdump]=$CAPTURE_PID
	if [[ -n ${RDPT_LIVE_BIN:-} ]]; then
		# text: exports failed attempts; ndjson: reads the client's key log as it is written;
		# redacted: ndjson with --redact, exporting too.
		local fmt
		local -A extra=(
			[txt]="--format text --export $STAGE/$SCENARIO.live-export"
			[ndjson]="--format ndjson --keylog $LAB_TMP/client.keys"
			[redacted.ndjson]="--format ndjson --redact --export $STAGE/$SCENARIO.live-export-redacted"
		)
		for fmt in txt ndjson redacted.ndjson; do
			# shellcheck disable=SC2086  # the options are split on purpose (no spaces in paths)
			ip netns exec "$NS_C" "$RDPT_LIVE_BIN" live -i eth0 --color never ${extra[$fmt]} \
				</dev/null >"$STAGE/$SCENARIO.live.$fmt" 2>"$STAGE/$SCENARIO.live.$fmt.err" &
			LAB_PIDS[live-$fmt]=$!
		done
	fi
	local started=0
	for _ in $(seq 1 50); do
		started=1
		grep -q 'listening on' "$LAB_TMP/tcpdump.log" 2>/dev/null || started=0
		if [[ -n ${RDPT_LIVE_BIN:-} ]]; then
			for fmt in txt ndjson redacted.ndjson; do
				grep -q 'listening on' "$STAGE/$SCENARIO.live.$fmt.err" 2>/dev/null || started=0
			done
		fi
		[[ $started == 1 ]] && return 0
		sleep 0.1
	done
	die 1 "tcpdump (or rdptriage live) did not start"
}

# lab_live_stop: give rdptriage live two seconds to report the last attempt on its own, then
# stop it the way a user does (SIGINT).
lab_live_stop() {
	[[ -n ${RDPT_LIVE_BIN:-} ]] || return 0
	sleep 2
	local fmt pid
	for fmt in txt ndjson redacted.ndjson; do
		pid=${LAB_PIDS[live-$fmt]:-}
		[[ -n $pid ]] || continue
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		unset "LAB_PIDS[live-$fmt]"
	done
}

# lab_capture_stop [SETTLE_SECONDS]: wait a moment for the last packets, stop tcpdump, and
# stage the capture as $SCENARIO.pcap.
lab_capture_stop() {
	sleep "${1:-1}"
	kill -INT "$CAPTURE_PID" 2>/dev/null || true
	wait "$CAPTURE_PID" 2>/dev/null || true
	unset "LAB_PIDS[tcpdump]"
	lab_live_stop
	PCAP="$STAGE/$SCENARIO.pcap"
	cp "$LAB_TMP/raw.pcap" "$PCAP"
	chmod 644 "$PCAP"
}

# lab_client_display: the client's own Xvfb (xfreerdp needs an X display).
lab_client_display() {
	[[ -n $CLIENT_DISPLAY ]] && return 0
	lab_xvfb client-xvfb "$NS_C"
	CLIENT_DISPLAY=$XVFB_DISPLAY
}

# lab_client SECONDS [-e VAR=VAL]... [-c CLOSE_AFTER] -- xfreerdp-args...
# Run xfreerdp in rdpt-client under `timeout SECONDS` with the key-log shim. With -c, the lab
# closes xfreerdp's window after CLOSE_AFTER seconds (WM_DELETE_WINDOW, as a user clicking the
# close button), so a working session ends the way a user ends it. Sets CLIENT_RC, CLIENT_LOG,
# CLIENT_CMD (password shown as ***) and appends its [ERROR] lines to CLIENT_ERRORS.
lab_client() {
	local secs=$1; shift
	local envs=() binds=() close_after=""
	while [[ $# -gt 0 && $1 != -- ]]; do
		case $1 in
			-e) envs+=("$2"); shift 2 ;;
			-b) binds+=("$2"); shift 2 ;;
			-c) close_after=$2; shift 2 ;;
			*) die 2 "lab_client: bad option $1" ;;
		esac
	done
	shift
	lab_client_display
	CLIENT_RUNS=$((CLIENT_RUNS + 1))
	CLIENT_LOG="$LAB_TMP/client-$CLIENT_RUNS.log"
	mkdir -p "$LAB_TMP/client-home"
	local a shown=(xfreerdp)
	for a in "$@"; do [[ $a == /p:* ]] && shown+=("/p:***") || shown+=("$a"); done
	CLIENT_CMD="${shown[*]}"
	CLIENT_CMDS+=("$CLIENT_CMD")
	log "client: timeout $secs ${CLIENT_CMD}"
	ip netns exec "$NS_C" env -i PATH="$SYS_PATH" HOME="$LAB_TMP/client-home" LANG=C.UTF-8 \
		DISPLAY="$CLIENT_DISPLAY" LD_PRELOAD="$LAB_TMP/keylog-shim.so" \
		SSLKEYLOGFILE="$LAB_TMP/client.keys" "${envs[@]}" \
		/bin/sh -c "$LAB_BIND_SCRIPT" sh "${binds[@]}" -- \
		timeout -k 2 "$secs" xfreerdp "$@" </dev/null >"$CLIENT_LOG" 2>&1 &
	local pid=$!
	LAB_PIDS[client]=$pid
	if [[ -n $close_after ]]; then
		sleep "$close_after"
		kill -0 "$pid" 2>/dev/null || die 1 "xfreerdp ended before the lab closed its window"
		in_ns "$NS_C" env -i DISPLAY="$CLIENT_DISPLAY" "$LAB_TMP/xclose" >>"$LAB_TMP/xclose.log" 2>&1 ||
			die 1 "could not close xfreerdp's window"
	fi
	lab_wait_client "$pid"
	local line
	while IFS= read -r line; do CLIENT_ERRORS+=("$line"); done < <(client_error_lines "$CLIENT_LOG")
}

# lab_client_openssl [LINE...]: an OpenSSL configuration for the client (its path in
# CLIENT_OPENSSL_CNF, for lab_client -e OPENSSL_CONF=...) that lets it speak old protocols and
# suites (MinProtocol TLSv1, SECLEVEL 0); each LINE is added to its [sys] section (for example
# "Options = -EncryptThenMac").
lab_client_openssl() {
	CLIENT_OPENSSL_CNF="$LAB_TMP/client-openssl.cnf"
	{
		printf '%s\n' "openssl_conf = conf" "[conf]" "ssl_conf = ssl" "[ssl]" "system_default = sys" "[sys]" \
			"MinProtocol = TLSv1" "CipherString = DEFAULT:@SECLEVEL=0"
		if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
	} >"$CLIENT_OPENSSL_CNF"
}

# lab_wait_client PID: waits for the client started in the background (its PID kept for the
# teardown meanwhile); sets CLIENT_RC.
lab_wait_client() {
	LAB_PIDS[client]=$1
	set +e
	wait "$1"
	CLIENT_RC=$?
	set -e
	unset "LAB_PIDS[client]"
	log "client exit status $CLIENT_RC"
}

# lab_pyclient SECONDS [aardwolf_client.py-args...]: the lab's second client, aardwolf (PyPI,
# installed by install-pyclient in $PYCLIENT_VENV, RDPT_PYCLIENT_VENV to override), through
# aardwolf_client.py: one NTLM attempt as the lab user to the server (--host, --port, --domain
# and --timeout may be given), the password through a file.
lab_pyclient() {
	local secs=$1; shift
	printf '%s\n' "$LAB_PASS" >"$LAB_TMP/client-password"
	chmod 600 "$LAB_TMP/client-password"
	lab_aardwolf "$secs" "" --host "$SERVER4" --user "$LAB_USER" "$@" --password-file "$LAB_TMP/client-password"
}

# lab_aardwolf SECONDS SETUP ARGS...: aardwolf_client.py ARGS under `timeout SECONDS` in
# rdpt-client with a clean environment, after the shell command SETUP (run in the same mount
# namespace, e.g. to bind a file over /etc/resolv.conf; "" for none); KRB5* variables pass
# through when set. No shim: aardwolf's TLS context comes from Python's
# ssl.create_default_context(), which writes $SSLKEYLOGFILE itself. The command is shown with
# file values (password file, credential cache) as ***. Sets CLIENT_RC, CLIENT_LOG, CLIENT_CMD
# and CLIENT_SOFTWARE, and appends aardwolf's error text to CLIENT_ERRORS.
lab_aardwolf() {
	local secs=$1 setup=$2; shift 2
	local py="$PYCLIENT_VENV/bin/python"
	"$py" -c 'import aardwolf' 2>/dev/null ||
		die 1 "aardwolf is not installed in $PYCLIENT_VENV (run captures/lab/install-pyclient)"
	CLIENT_RUNS=$((CLIENT_RUNS + 1))
	CLIENT_LOG="$LAB_TMP/client-$CLIENT_RUNS.log"
	mkdir -p "$LAB_TMP/client-home"
	local a prev="" shown=(aardwolf_client.py)
	for a in "$@"; do
		[[ $prev == --password-file || $prev == --ccache ]] && shown+=("***") || shown+=("$a")
		prev=$a
	done
	CLIENT_CMD="${shown[*]}"
	CLIENT_CMDS+=("$CLIENT_CMD")
	log "client: timeout $secs $CLIENT_CMD"
	local krb=()
	[[ -n ${KRB5_CONFIG:-} ]] && krb+=(KRB5_CONFIG="$KRB5_CONFIG")
	[[ -n ${KRB5CCNAME:-} ]] && krb+=(KRB5CCNAME="$KRB5CCNAME")
	ip netns exec "$NS_C" env -i PATH="$SYS_PATH" HOME="$LAB_TMP/client-home" LANG=C.UTF-8 "${krb[@]}" \
		SSLKEYLOGFILE="$LAB_TMP/client.keys" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
		/bin/sh -c "set -e; ${setup:-:}; exec \"\$@\"" sh \
		timeout -k 2 "$secs" "$py" "$LAB_DIR/aardwolf_client.py" "$@" </dev/null >"$CLIENT_LOG" 2>&1 &
	lab_wait_client $!
	CLIENT_SOFTWARE="aardwolf $("$py" -c 'from importlib.metadata import version; print(version("aardwolf"))') (PyPI; Python $("$py" -c 'import platform; print(platform.python_version())'), captures/lab/aardwolf_client.py)"
	local line
	while IFS= read -r line; do CLIENT_ERRORS+=("$line"); done < <(sed -n 's/^error: //p' "$CLIENT_LOG")
}

# client_error_lines LOG: xfreerdp's [ERROR] lines (and the negotiation WARN line that names the
# failure code), from "[ERROR]" on: the run-specific "[time] [pid:tid] " prefix is left out,
# the rest is exactly as printed. The backtrace lines that follow "Caught signal" are left out.
client_error_lines() {
	grep -aoE '\[(ERROR|WARN)\]\[[^]]+\] - .*' "$1" |
		grep -E '^\[ERROR\]|^\[WARN\]\[com\.freerdp\.core\.nego\] - Error:' |
		grep -vE '^\[ERROR\]\[com\.freerdp\.utils\] - [0-9]+: ' || true
}

# lab_save_keys: stage the client's key log as $SCENARIO.keys when TLS ran.
lab_save_keys() {
	KEYS=""
	if [[ -s $LAB_TMP/client.keys ]]; then
		KEYS="$STAGE/$SCENARIO.keys"
		cp "$LAB_TMP/client.keys" "$KEYS"
		chmod 644 "$KEYS"
	fi
}

# ---------------------------------------------------------------------------------------------
# reading the capture back (sanity checks); key frames are computed by expected.py

# ts ARGS...: tshark on the final capture, TLS decoded on the RDP port(s), key log when present.
TLS_PORTS="3389"
ts() {
	local d=() p
	for p in $TLS_PORTS; do d+=(-d "tcp.port==$p,tls"); done
	[[ -n ${KEYS:-} ]] && d+=(-o "tls.keylog_file:$KEYS")
	tshark -n -r "$PCAP" "${d[@]}" "$@" 2>/dev/null
}
# tsr ARGS...: tshark on the final capture without decoding the RDP port as TLS (X.224 visible;
# a port other than 3389 is decoded as TPKT).
tsr() {
	local d=() p
	for p in $TLS_PORTS; do [[ $p == 3389 ]] || d+=(-d "tcp.port==$p,tpkt"); done
	tshark -n -r "$PCAP" "${d[@]}" "$@" 2>/dev/null
}

# count FILTER [raw]: number of frames matching FILTER (TLS view, or X.224 view with "raw").
count() {
	if [[ ${2:-} == raw ]]; then tsr -Y "$1" -T fields -e frame.number | wc -l
	else ts -Y "$1" -T fields -e frame.number | wc -l; fi
}
# expect FILTER MESSAGE [raw]: sanity check that at least one frame matches.
expect() { [[ $(count "$1" "${3:-}") -gt 0 ]] || die 1 "sanity check failed: $2 (filter: $1)"; }
expect_none() { [[ $(count "$1" "${3:-}") -eq 0 ]] || die 1 "sanity check failed: $2 (filter: $1)"; }

# lab_check_decrypt: the key log really decrypts the capture (a decrypted Finished message is
# visible only with the right keys, for TLS 1.2 and 1.3 alike).
lab_check_decrypt() {
	[[ -n ${KEYS:-} ]] || die 1 "no key log although TLS ran"
	expect 'tls.handshake.type == 20' "the key log decrypts the TLS session (Finished visible)"
}

# ---------------------------------------------------------------------------------------------
# expected file

lab_join() { local sep=$1 out="" x; shift; for x in "$@"; do out+="${out:+$sep}$x"; done; printf '%s' "$out"; }

# lab_expected: reads the scenario's design as JSON on stdin (see expected.py), which checks it
# against the capture, computes the key frames, and writes $SCENARIO.expected.json; then the
# three results replace the old ones in $OUT_DIR together.
lab_expected() {
	local errs
	errs=$(printf '%s\n' "${CLIENT_ERRORS[@]+"${CLIENT_ERRORS[@]}"}")
	"$PY" "$LAB_DIR/expected.py" \
		--name "$SCENARIO" \
		--script "captures/lab/scenarios/$SCENARIO.sh" \
		--client "${CLIENT_SOFTWARE:-xfreerdp $(dpkg-query -W -f '${Version}' freerdp2-x11)}" \
		--server "$SOFTWARE_SERVER" \
		--client-command "$(lab_join '; ' "${CLIENT_CMDS[@]}")" \
		--client-error "$errs" \
		--keys "${KEYS:-}" \
		--tls-ports "$TLS_PORTS" \
		--pcap "$PCAP" \
		--out "$STAGE/$SCENARIO.expected.json" || die 1 "the capture does not show what the scenario designed"
	local f
	rm -f "$OUT_DIR/$SCENARIO.pcap" "$OUT_DIR/$SCENARIO.keys" "$OUT_DIR/$SCENARIO.expected.json"
	rm -rf "$OUT_DIR/$SCENARIO.live-export" "$OUT_DIR/$SCENARIO.live-export-redacted"
	for f in "$STAGE/$SCENARIO".*; do
		# Directories: live --export's output (RDPT_LIVE_BIN).
		if [[ -d $f ]]; then chmod -R u+rwX,go+rX "$f"; else chmod 644 "$f"; fi
		mv "$f" "$OUT_DIR/"
	done
	PCAP="$OUT_DIR/$SCENARIO.pcap"
	log "wrote $PCAP ($(stat -c %s "$PCAP") bytes), $SCENARIO.expected.json${KEYS:+, $SCENARIO.keys}"
}

# ---------------------------------------------------------------------------------------------
# DNS and web host (rdpt-dns)

# lab_dns NAME,ADDRESS...: dnsmasq on 203.0.113.53 in rdpt-dns, authoritative for corp.example
# (--local: names it does not know, or record types it lacks, are answered locally and never
# forwarded; there is no upstream anyway). Writes $LAB_TMP/resolv.conf for the client, which
# lab_client bind-mounts over /etc/resolv.conf when given -b "$CLIENT_RESOLV".
lab_dns() {
	local recs=() r
	for r in "$@"; do recs+=("--host-record=$r"); done
	echo "nameserver $DNS4" >"$LAB_TMP/resolv.conf"
	# shellcheck disable=SC2034  # used by the scenarios
	CLIENT_RESOLV="$LAB_TMP/resolv.conf:/etc/resolv.conf"
	lab_bg dnsmasq "$NS_D" -- dnsmasq --keep-in-foreground --no-resolv --no-hosts \
		--conf-file=/dev/null --listen-address="$DNS4" --bind-interfaces --user=root --group=root \
		--pid-file="$LAB_TMP/dnsmasq.pid" --log-queries --log-facility=- \
		--local=/corp.example/ "${recs[@]}"
	lab_wait_listen "$NS_D" 53 u
}

# ---------------------------------------------------------------------------------------------
# Kerberos through a real RDP client (scenario kerberos-wrong-host): an MIT KDC in rdpt-dns,
# aardwolf (install-pyclient's venv) as the client, whose CredSSP sends SPNEGO with a Kerberos
# AP-REQ (FreeRDP 2.11.7 cannot: README.md, "What the real software does").

KRB_REALM=CORP.EXAMPLE

# lab_krb_kdc PRINCIPAL...: an MIT KDC (krb5kdc) for $KRB_REALM in rdpt-dns (203.0.113.53, the
# lab's "domain controller": DNS and KDC), with its own config and database under the temp dir.
# The lab user gets the lab password; each PRINCIPAL (a service) a random key. Needs
# lab_topology dns.
lab_krb_kdc() {
	local dir="$LAB_TMP/kdc" p
	command -v krb5kdc >/dev/null && command -v kdb5_util >/dev/null && command -v kadmin.local >/dev/null ||
		die 1 "missing krb5kdc / kdb5_util / kadmin.local (install krb5-kdc and krb5-admin-server: packages.txt)"
	mkdir -p "$dir"
	cat >"$dir/krb5.conf" <<-K
	[libdefaults]
	  default_realm = $KRB_REALM
	  dns_lookup_kdc = false
	  dns_lookup_realm = false
	[realms]
	  $KRB_REALM = {
	    kdc = $DNS4
	  }
	K
	cat >"$dir/kdc.conf" <<-K
	[kdcdefaults]
	  kdc_listen = 88
	  kdc_tcp_listen = 88
	[realms]
	  $KRB_REALM = {
	    database_name = $dir/principal
	    key_stash_file = $dir/stash
	    acl_file = $dir/kadm5.acl
	    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	    max_life = 1h
	  }
	[logging]
	  kdc = FILE:$dir/kdc.log
	K
	: >"$dir/kadm5.acl"
	local kenv=(env -i PATH="$SYS_PATH" KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf")
	# a throwaway master password for a database that lives as long as the run
	"${kenv[@]}" kdb5_util create -s -r "$KRB_REALM" -P "lab-master-$$" >"$dir/setup.log" 2>&1 ||
		die 1 "kdb5_util create failed (see $dir/setup.log)"
	"${kenv[@]}" kadmin.local -r "$KRB_REALM" -q "addprinc -pw $LAB_PASS $LAB_USER" >>"$dir/setup.log" 2>&1 ||
		die 1 "kadmin.local: could not add $LAB_USER"
	for p in "$@"; do
		"${kenv[@]}" kadmin.local -r "$KRB_REALM" -q "addprinc -randkey $p" >>"$dir/setup.log" 2>&1 ||
			die 1 "kadmin.local: could not add $p"
	done
	lab_bg kdc "$NS_D" -e "KRB5_CONFIG=$dir/krb5.conf" -e "KRB5_KDC_PROFILE=$dir/kdc.conf" -- \
		krb5kdc -n -r "$KRB_REALM" -P "$dir/kdc.pid"
	lab_wait_listen "$NS_D" 88
}

# lab_aardwolf_kerberos SECONDS HOST: the lab user's Kerberos logon, then an RDP connection
# with it, in rdpt-client, resolving names through the lab's DNS (lab_dns; its resolv.conf is
# bound over /etc/resolv.conf). MIT's kinit (the lab password on its standard input) gets the TGT
# and kvno the ticket for termsrv/HOST into a credential cache, as a logged-on user's client
# would hold them; then aardwolf_client.py connects to HOST and presents that ticket (see
# lab_aardwolf).
lab_aardwolf_kerberos() {
	local secs=$1 host=$2
	local ccache="$LAB_TMP/client-home/ccache" resolv=${CLIENT_RESOLV%%:*}
	local bind="mount --bind '$resolv' /etc/resolv.conf"
	mkdir -p "$LAB_TMP/client-home"
	local kenv=(ip netns exec "$NS_C" env -i PATH="$SYS_PATH" KRB5_CONFIG="$LAB_TMP/kdc/krb5.conf"
		KRB5CCNAME="FILE:$ccache" /bin/sh -c "$bind"' && exec "$@"' sh)
	printf '%s\n' "$LAB_PASS" | "${kenv[@]}" timeout 10 kinit "$LAB_USER@$KRB_REALM" >"$LAB_TMP/kinit.log" 2>&1 ||
		die 1 "kinit failed: $(cat "$LAB_TMP/kinit.log")"
	"${kenv[@]}" timeout 10 kvno "termsrv/$host@$KRB_REALM" >>"$LAB_TMP/kinit.log" 2>&1 ||
		die 1 "kvno failed: $(cat "$LAB_TMP/kinit.log")"
	CLIENT_CMDS+=("kinit $LAB_USER@$KRB_REALM" "kvno termsrv/$host@$KRB_REALM")
	KRB5_CONFIG="$LAB_TMP/kdc/krb5.conf" KRB5CCNAME="FILE:$ccache" lab_aardwolf "$secs" "$bind" \
		--host "$host" --realm "$KRB_REALM" --user "$LAB_USER" --kdc "$DNS4" --ccache "$ccache" \
		--timeout "$((secs - 2))"
}
