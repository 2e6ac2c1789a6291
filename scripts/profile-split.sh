#!/usr/bin/env bash
# Splits a CPU profile of a `make bench` round (JB_BENCH_PROFILE=dir) into the stages of the
# receive path, as a share of all samples: where a packet's CPU goes (BENCHMARKS.md).
#   scripts/profile-split.sh DIR/Recv_recv_streams100.cpu.pprof
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
prof=${1:?usage: profile-split.sh FILE.cpu.pprof}
total=$(go tool pprof -top "$prof" 2>/dev/null | sed -n 's/.*Total samples = \([0-9.]*\)s.*/\1/p')
share() { # label, focus regexp
	local s
	s=$(go tool pprof -top -focus="$2" "$prof" 2>/dev/null | sed -n 's/.*accounting for \([0-9.]*\)s.*/\1/p' | head -1)
	awk -v l="$1" -v s="${s:-0}" -v t="$total" 'BEGIN { printf "%-46s %5.1f%%\n", l, 100 * s / t }'
}
echo "samples: ${total}s"
share "ICE socket read (recvmsg, STUN check)" 'ice/v4\.\(\*candidateBase\)\.recvLoop|ice/v4\.\(\*UDPMuxDefault\)\.connWorker'
share "pion demux (DTLS/SRTP/SRTCP)" 'webrtc/v4/internal/mux\.\(\*Mux\)\.readLoop'
share "SRTP decrypt and per-SSRC dispatch" 'srtp/v3\.\(\*session\)\.start'
share "track read + interceptors (NACK, reports)" 'webrtc/v4\.\(\*TrackRemote\)\.(Read|ReadRTP)$'
share "RTCP in (sender reports)" 'RTPReceiver\)\.ReadRTCP'
share "interceptor timers (NACK 40 ms, reports 1 s)" 'nack\.\(\*GeneratorInterceptor\)\.loop|report\.\(\*(Receiver|Sender)Interceptor\)\.loop|twcc|stats\.'
share "ICE agent (keepalives, checks)" 'ice/v4\.\(\*Agent\)'
share "framer (depacketise, reorder, timeline)" 'janusbridge/framer\.'
share "file sinks (queue, muxers, writes)" 'janusbridge/bridge\.\(\*sinkQueue\)\.run|janusbridge/sinks\.\(\*File\)'
share "rtp sinks (forward)" 'janusbridge/bridge\.\(\*packetSink\)|janusbridge/sinks\.\(\*RTP\)'
share "pion writers (reader side)" 'ivfwriter|oggwriter'
share "scheduler (park, wake, netpoll)" '^runtime\.(mcall|schedule|findRunnable)$'
share "garbage collector" 'runtime\.gcBgMarkWorker'
