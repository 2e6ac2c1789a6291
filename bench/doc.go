// Package bench holds janusbridge's load benchmarks, run by `make bench`
// (as root, inside a network namespace of their own, see TESTING.md)
// against the real components: Janus, ffmpeg feeds and pion peers.
//
// Three scenarios, each measured twice in the same run, one side after the
// other in the same conditions (rounds A B B A), so that the ratio between
// the two holds on a noisy machine:
//
//   - BenchmarkRecv: N viewers (1, 10, 100, 200, 500) of an ffmpeg-fed
//     VP8+Opus Streaming mountpoint recording to files: a bridge.Daemon with
//     N recv bridges writing WebM, against a plain pion reader (ReadRTP,
//     pion's ivfwriter/oggwriter);
//   - BenchmarkForward: 100 viewers forwarding as plain RTP to local ports
//     (N bridges with an `rtp` sink, against a pion reader writing each
//     packet to a UDP socket), with the end-to-end latency of every packet
//     from the benchmark's own relay of the feed to the forward's port;
//   - BenchmarkSend: 20 publishers into a VideoRoom looping a VP8+Opus clip
//     (N send bridges with a `file` source, against pion
//     TrackLocalStaticSample publishers fed by ivfreader/oggreader).
//
// Results go into BENCHMARKS.md; timing never decides a unit test's
// pass/fail. The benchmarks live in _test.go files because the test harness
// (internal/janustest) needs a testing.TB.
package bench
