#!/usr/bin/env bash
# netns.sh: create the test network namespace described in TESTING.md, idempotently.
#
#   scripts/netns.sh              create (or repair) the namespace "jbtest"
#   scripts/netns.sh exec CMD...  create it if needed, then run CMD inside it
#   scripts/netns.sh delete       remove the namespace
#
# Inside the namespace: lo is up, and a veth pair v0/v1 is up with 127.0.0.2/32 on v0. Janus
# never gathers candidates on a loopback interface, so v0 is the interface it offers
# ("127.0.0.2 ... typ host"); both veth ends must be up for v0 to be IFF_RUNNING.
# Needs root. The namespace name can be overridden with JB_NETNS.
set -euo pipefail

NS="${JB_NETNS:-jbtest}"
ADDR="127.0.0.2/32"

die() { echo "netns.sh: $*" >&2; exit 1; }

setup() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (ip netns needs CAP_SYS_ADMIN)"
	command -v ip >/dev/null 2>&1 || die "ip (iproute2) not found"
	if ! ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
		# A concurrent run may win the race; that is fine as long as the namespace exists.
		ip netns add "$NS" 2>/dev/null || ip netns list | awk '{print $1}' | grep -qx "$NS" ||
			die "cannot create network namespace $NS"
	fi
	ip -n "$NS" link set lo up
	if ! ip -n "$NS" link show v0 >/dev/null 2>&1; then
		ip -n "$NS" link add v0 type veth peer name v1 2>/dev/null ||
			ip -n "$NS" link show v0 >/dev/null 2>&1 || die "cannot create veth v0/v1 in $NS"
	fi
	if ! ip -n "$NS" -4 addr show dev v0 | grep -q "inet ${ADDR%/*}/"; then
		ip -n "$NS" addr add "$ADDR" dev v0 2>/dev/null ||
			ip -n "$NS" -4 addr show dev v0 | grep -q "inet ${ADDR%/*}/" ||
			die "cannot add $ADDR to v0 in $NS"
	fi
	ip -n "$NS" link set v0 up
	ip -n "$NS" link set v1 up
}

case "${1:-}" in
"" | setup | create)
	setup
	;;
exec)
	shift
	[ "$#" -gt 0 ] || die "usage: $0 exec CMD [ARGS...]"
	setup
	exec ip netns exec "$NS" "$@"
	;;
delete)
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
		ip netns delete "$NS"
	fi
	;;
-h | --help | help)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	die "unknown command '$1' (use: setup | exec CMD... | delete)"
	;;
esac
