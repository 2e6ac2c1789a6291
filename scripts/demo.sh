#!/usr/bin/env bash
# demo.sh: janusbridge end to end against a local Janus (run by `make demo`, after deps and build).
#
# As root: creates the test network namespace (scripts/netns.sh), starts Janus in it with a
# generated configuration (Streaming mountpoint 1 = VP8+Opus, mountpoint 2 = H.264+Opus), feeds
# both mountpoints with ffmpeg test media, writes demo.toml with two recv bridges
# (cam1 -> webm + ogg, cam2 -> mkv + mp4), runs `janusbridge validate` and `janusbridge probe`,
# then `janusbridge run` for 20 s if this build can run those bridges, and prints an ffprobe
# summary of every file it wrote. Janus and ffmpeg are stopped on exit; the namespace stays.
#
# Everything (configuration, logs, recordings) goes to a new /tmp/janusbridge-demo.XXXXXX, or to
# DEMO_DIR if set; it is kept and printed at the end. JANUSBRIDGE overrides the binary
# (default bin/janusbridge) and DEMO_RUN_SECONDS the 20 s. Exit status: non-zero if anything
# before `run` fails (validate and probe included), if a supported `run` fails, or if a recording
# does not decode cleanly (ffmpeg -v error prints something); 0 when `run` refuses the bridges.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
NS="${JB_NETNS:-jbtest}"
JB="${JANUSBRIDGE:-$REPO/bin/janusbridge}"
RUN_SECONDS="${DEMO_RUN_SECONDS:-20}"

# Fixed demo ports (inside the namespace, so they only have to be free there). The UDP feed ports
# stay clear of the ranges the test suite uses in the same namespace: 20000-29999 (janustest feeds),
# 30000-39999 (Janus media ports), 40000-40999 (the bridge's ICE ports).
HTTP_PORT=18088
WS_PORT=18188
CONTROL_PORT=18090
MP1_AUDIO=19002 # mountpoint 1: VP8 + Opus
MP1_VIDEO=19004
MP2_AUDIO=19006 # mountpoint 2: H.264 + Opus
MP2_VIDEO=19008
RTP_RANGE="30000-39999"
BRIDGE_UDP_MIN=40000
BRIDGE_UDP_MAX=40999

say() { printf '\n==> %s\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}
# NSEXEC runs a command inside the namespace; `ip netns exec` execs it, so "${NSEXEC[@]}" CMD &
# leaves CMD's own pid in $! (a shell function run with & would leave a subshell's pid there, and
# killing that would orphan CMD).
NSEXEC=(ip netns exec "$NS")
nsexec() { "${NSEXEC[@]}" "$@"; }

JANUS_PID=""
RUN_PID=""
FEED_PIDS=()
WORK=""

# stop PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 5); only for our own children.
stop() {
	local pid="$1" i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	if [ -n "$RUN_PID" ]; then stop "$RUN_PID" 35; fi # timeout: its own -k 30 comes first
	for pid in "${FEED_PIDS[@]}"; do stop "$pid"; done
	if [ -n "$JANUS_PID" ]; then stop "$JANUS_PID"; fi
	if [ -n "$WORK" ]; then
		echo
		echo "demo: Janus and ffmpeg stopped; the network namespace $NS is left in place."
		echo "demo: configuration, logs and recordings are in $WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] || die "must run as root (it creates a network namespace; see TESTING.md)"
[ -x "$JB" ] || die "$JB not found: run 'make demo' (or 'make build' first)"
for p in janus ffmpeg ffprobe ip timeout; do
	command -v "$p" >/dev/null 2>&1 || die "$p not installed: run 'make deps' as root"
done

# Janus modules live in a distribution-dependent directory (same list as internal/janustest).
LIBDIR=""
for d in /usr/lib/x86_64-linux-gnu/janus /usr/lib/aarch64-linux-gnu/janus /usr/lib/janus \
	/usr/local/lib/janus /opt/janus/lib/janus; do
	if [ -d "$d/plugins" ]; then
		LIBDIR="$d"
		break
	fi
done
[ -n "$LIBDIR" ] || die "no Janus plugins folder found (is the janus package installed?)"

if [ -n "${DEMO_DIR:-}" ]; then
	WORK="$DEMO_DIR"
	mkdir -p "$WORK"
else
	WORK="$(mktemp -d /tmp/janusbridge-demo.XXXXXX)"
fi
WORK="$(cd "$WORK" && pwd)"
OUT="$WORK/out"
JCFG="$WORK/janus"
mkdir -p "$OUT" "$JCFG"

say "network namespace $NS (scripts/netns.sh)"
JB_NETNS="$NS" bash "$REPO/scripts/netns.sh"
echo "inside $NS: lo, and v0 with 127.0.0.2 (the address Janus offers as its host candidate)"

# post PORT PATH JSON: POST JSON to 127.0.0.1:PORT inside the namespace with bash's /dev/tcp
# (curl is not always installed); prints the response body.
post() {
	# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
	nsexec timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" \
			"$2" "${#3}" "$3" >&3
		sed "1,/^\r\{0,1\}$/d" <&3' post "$1" "$2" "$3" 2>/dev/null
}

janus_info() { post "$HTTP_PORT" /janus '{"janus":"info","transaction":"demo"}'; }

# disabled DIR KEEP...: the libjanus_*.so in DIR that are not in KEEP, comma-separated.
disabled() {
	local dir="$1" f b k off=""
	shift
	for f in "$dir"/libjanus_*.so; do
		[ -e "$f" ] || continue
		b="$(basename "$f")"
		for k in "$@"; do [ "$b" = "$k" ] && continue 2; done
		off="${off:+$off,}$b"
	done
	printf '%s' "$off"
}

say "Janus configuration in $JCFG"
for m in plugins/libjanus_streaming.so plugins/libjanus_videoroom.so plugins/libjanus_echotest.so \
	plugins/libjanus_audiobridge.so transports/libjanus_http.so transports/libjanus_websockets.so; do
	[ -e "$LIBDIR/$m" ] || die "Janus module $LIBDIR/$m missing"
done
cat >"$JCFG/janus.jcfg" <<EOF
general: {
	configs_folder = "$JCFG"
	plugins_folder = "$LIBDIR/plugins"
	transports_folder = "$LIBDIR/transports"
	events_folder = "$LIBDIR/events"
	loggers_folder = "$LIBDIR/loggers"
	debug_level = 4
	server_name = "janusbridge-demo"
	session_timeout = 60
	reclaim_session_timeout = 20
}
certificates: { }
media: { rtp_port_range = "$RTP_RANGE" }
nat: { nice_debug = false ice_ignore_list = "vmnet" ignore_mdns = true }
plugins: { disable = "$(disabled "$LIBDIR/plugins" libjanus_streaming.so libjanus_videoroom.so libjanus_echotest.so libjanus_audiobridge.so)" }
transports: { disable = "$(disabled "$LIBDIR/transports" libjanus_http.so libjanus_websockets.so)" }
loggers: { disable = "$(disabled "$LIBDIR/loggers")" }
events: { broadcast = false }
EOF
cat >"$JCFG/janus.transport.http.jcfg" <<EOF
general: { json = "plain" base_path = "/janus" http = true port = $HTTP_PORT ip = "127.0.0.1" https = false }
admin: { admin_http = false admin_https = false }
cors: { }
EOF
cat >"$JCFG/janus.transport.websockets.jcfg" <<EOF
general: { json = "plain" ws = true ws_port = $WS_PORT ws_ip = "127.0.0.1" wss = false }
admin: { admin_ws = false admin_wss = false }
EOF
cat >"$JCFG/janus.plugin.streaming.jcfg" <<EOF
general: { rtp_port_range = "$RTP_RANGE" }
mp-1: {
	type = "rtp"
	id = 1
	description = "demo vp8 opus"
	media = (
		{ type = "audio" mid = "a" port = $MP1_AUDIO pt = 111 codec = "opus" },
		{ type = "video" mid = "v" port = $MP1_VIDEO pt = 100 codec = "vp8" }
	)
}
mp-2: {
	type = "rtp"
	id = 2
	description = "demo h264 opus"
	media = (
		{ type = "audio" mid = "a" port = $MP2_AUDIO pt = 111 codec = "opus" },
		{ type = "video" mid = "v" port = $MP2_VIDEO pt = 96 codec = "h264" fmtp = "profile-level-id=42e01f;packetization-mode=1" }
	)
}
EOF
echo 'general: { }' >"$JCFG/janus.plugin.videoroom.jcfg"
echo 'general: { }' >"$JCFG/janus.plugin.echotest.jcfg"
echo "general: { rtp_port_range = \"$RTP_RANGE\" }" >"$JCFG/janus.plugin.audiobridge.jcfg"
ls "$JCFG"

say "Janus in $NS: HTTP 127.0.0.1:$HTTP_PORT/janus, WebSocket 127.0.0.1:$WS_PORT"
if janus_info | grep -q server_info; then
	die "something already answers on 127.0.0.1:$HTTP_PORT in $NS (a Janus left over from an earlier demo?)"
fi
"${NSEXEC[@]}" janus -C "$JCFG/janus.jcfg" -F "$JCFG" -o -D >"$WORK/janus.log" 2>&1 &
JANUS_PID=$!
ready=""
for ((i = 0; i < 150; i++)); do # up to 30 s
	kill -0 "$JANUS_PID" 2>/dev/null || break
	if janus_info | grep -q '"server_info"'; then
		ready=1
		break
	fi
	sleep 0.2
done
if [ -z "$ready" ]; then
	tail -n 40 "$WORK/janus.log" >&2 || true
	die "Janus did not answer 'info' (log: $WORK/janus.log)"
fi
janus_info | grep -o '"version_string": *"[^"]*"' | head -n 1 || true
echo "Janus is up (pid $JANUS_PID, log $WORK/janus.log)"

# feed NAME CODEC AUDIO_PORT VIDEO_PORT PT: ffmpeg test media (testsrc2 + 440 Hz sine, 25 fps,
# a keyframe every second since ffmpeg's RTP output ignores keyframe requests), as janustest does.
feed() {
	local name="$1" codec="$2" aport="$3" vport="$4" pt="$5" venc
	if [ "$codec" = h264 ]; then
		venc=(-c:v libx264 -preset ultrafast -tune zerolatency -profile:v baseline -level:v 3.1
			-pix_fmt yuv420p -sc_threshold 0)
	else
		venc=(-c:v libvpx -deadline realtime -cpu-used 8 -lag-in-frames 0 -error-resilient 1
			-auto-alt-ref 0)
	fi
	"${NSEXEC[@]}" ffmpeg -nostdin -hide_banner -loglevel error \
		-re -f lavfi -i testsrc2=size=640x360:rate=25 \
		-re -f lavfi -i sine=frequency=440:sample_rate=48000 \
		-map 0:v "${venc[@]}" -b:v 800k -g 25 -keyint_min 25 \
		-payload_type "$pt" -f rtp "rtp://127.0.0.1:$vport?pkt_size=1200" \
		-map 1:a -c:a libopus -ar 48000 -ac 2 -b:a 64k -application lowdelay \
		-payload_type 111 -f rtp "rtp://127.0.0.1:$aport?pkt_size=1200" \
		>"$WORK/ffmpeg-$name.log" 2>&1 &
	FEED_PIDS+=("$!")
	echo "$name: $codec + opus -> 127.0.0.1:$vport (video), 127.0.0.1:$aport (audio), pid $!"
}

say "ffmpeg test feeds in $NS"
feed mp1 vp8 "$MP1_AUDIO" "$MP1_VIDEO" 100
feed mp2 h264 "$MP2_AUDIO" "$MP2_VIDEO" 96
sleep 2
for i in "${!FEED_PIDS[@]}"; do
	if ! kill -0 "${FEED_PIDS[$i]}" 2>/dev/null; then
		cat "$WORK"/ffmpeg-*.log >&2 || true
		die "an ffmpeg feed exited (logs: $WORK/ffmpeg-*.log)"
	fi
done

say "janusbridge configuration $WORK/demo.toml"
cat >"$WORK/demo.toml" <<EOF
# Written by scripts/demo.sh: two recv bridges on the demo Janus in network namespace $NS.
[janus]
servers = ["ws://127.0.0.1:$WS_PORT/", "http://127.0.0.1:$HTTP_PORT/janus"]

[webrtc]
# Inside the namespace Janus offers 127.0.0.2 (on veth v0), which is a loopback address to pion.
loopback_candidates = true
udp_port_min = $BRIDGE_UDP_MIN
udp_port_max = $BRIDGE_UDP_MAX

[control]
listen = "127.0.0.1:$CONTROL_PORT"

[log]
level = "info"

# Streaming mountpoint 1 (VP8 + Opus): WebM with both tracks, Ogg with the audio.
[[bridge]]
name = "cam1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "$OUT/{bridge}/{start}.webm"
  [[bridge.sink]]
  type = "ogg"
  path = "$OUT/{bridge}/{start}.ogg"

# Streaming mountpoint 2 (H.264 + Opus): Matroska and fragmented MP4.
[[bridge]]
name = "cam2"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "mkv"
  path = "$OUT/{bridge}/{start}.mkv"
  [[bridge.sink]]
  type = "mp4"
  path = "$OUT/{bridge}/{start}.mp4"
EOF
cat "$WORK/demo.toml"

say "janusbridge validate -c demo.toml"
nsexec "$JB" validate -c "$WORK/demo.toml" || die "validate failed (exit $?)"

say "janusbridge probe -c demo.toml"
nsexec "$JB" probe -c "$WORK/demo.toml" || die "probe failed (exit $?)"

say "janusbridge run -c demo.toml (${RUN_SECONDS} s, then SIGTERM)"
# In the background into run.log, shown live by tail: no pipe that a descendant of janusbridge
# could keep open, and cleanup can stop it (timeout passes SIGTERM on) if the demo is interrupted.
start=$SECONDS
rc=0
: >"$WORK/run.log"
timeout --preserve-status -k 30 -s TERM "$RUN_SECONDS" \
	"${NSEXEC[@]}" "$JB" run -c "$WORK/demo.toml" >>"$WORK/run.log" 2>&1 &
RUN_PID=$!
tail -n +1 -f --pid="$RUN_PID" "$WORK/run.log" || true
wait "$RUN_PID" || rc=$?
RUN_PID=""
elapsed=$((SECONDS - start))

if [ "$rc" -eq 2 ] && grep -q "not supported yet" "$WORK/run.log"; then
	echo
	echo "demo: this build of janusbridge cannot run these bridges yet (exit 2 above): recording"
	echo "demo: arrives with the recv-bridge issue, so the demo stops at probe. Validate and probe passed."
	exit 0
fi
if [ "$elapsed" -lt "$RUN_SECONDS" ]; then
	die "janusbridge run exited after ${elapsed} s with status $rc (log: $WORK/run.log)"
fi
if [ "$rc" -ne 0 ]; then
	echo "demo: warning: janusbridge run did not stop cleanly on SIGTERM (status $rc)" >&2
fi

say "recordings (ffprobe)"
mapfile -t files < <(find "$OUT" -type f \( -name '*.webm' -o -name '*.ogg' -o -name '*.mkv' -o -name '*.mp4' \) | sort)
if [ "${#files[@]}" -eq 0 ]; then
	die "janusbridge run wrote no files into $OUT (log: $WORK/run.log)"
fi
bad=0
for f in "${files[@]}"; do
	echo "$f"
	ffprobe -v error -show_entries format=format_name,duration,size \
		-of default=noprint_wrappers=1 "$f" 2>&1 | sed 's/^/    /' || bad=1
	ffprobe -v error -show_entries stream=index,codec_type,codec_name,width,height,sample_rate,channels \
		-of compact=print_section=0 "$f" 2>&1 | sed 's/^/    stream /' || bad=1
	if errs="$(ffmpeg -nostdin -v error -i "$f" -f null - 2>&1)" && [ -z "$errs" ]; then
		echo "    decode: clean (ffmpeg -v error -f null)"
	else
		echo "    decode: ERRORS"
		printf '%s\n' "$errs" | head -n 5 | sed 's/^/      /' || true
		bad=1
	fi
done
[ "$bad" -eq 0 ] || die "some recordings do not decode cleanly"
echo
echo "demo: ${#files[@]} files recorded into $OUT"
