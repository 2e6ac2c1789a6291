// Package bench holds janusbridge's load benchmarks, run by `make bench`
// (as root, inside the test network namespace of TESTING.md) against the
// real components: a Janus Streaming mountpoint fed by ffmpeg and N
// viewers of it.
//
// Each scenario is measured twice in the same run, one after the other in
// the same conditions: once for janusbridge (bridge.Run with N recv bridges
// writing WebM files) and once for a plain pion reader (N recvonly
// PeerConnections with pion's default interceptors, ReadRTP and pion's
// ivfwriter/oggwriter), so that the ratio between the two holds on a noisy
// machine. Results go into BENCHMARKS.md; timing never decides a unit
// test's pass/fail.
//
// The benchmarks live in recv_test.go because the test harness
// (internal/janustest) needs a testing.TB.
package bench
